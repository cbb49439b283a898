//! The data sets `regulab data fetch` knows: where each is published, its files with
//! their pinned sizes and checksums, and how they become a data folder.

use anyhow::{bail, Result};

use super::DOWNLOADS_FOLDER;

/// How the downloaded files become the data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// Zip archives whose entries sit under `top_folder`; that folder becomes the data folder.
    Zip { top_folder: &'static str },
    /// Gzip-compressed files kept as they are, gathered into the data folder.
    GzipFiles,
}

/// One published file with what is known about it. At least one checksum is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: &'static str,
    pub bytes: Option<u64>,
    pub md5: Option<&'static str>,
    pub sha256: Option<&'static str>,
}

/// A file of the unpacked data folder, by which a folder placed by hand (under the cache, or
/// with `regulab data add`) is recognized and verified. For [`ArchiveKind::GzipFiles`] the
/// name is the uncompressed file's, found as `NAME.gz` or `NAME`, and the checksum is of the
/// uncompressed contents (so that a copy recompressed by another tool still verifies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub name: &'static str,
    /// A folder without it is not this data set's layout.
    pub required: bool,
    /// SHA-256 of the published file; `None` where regulab knows none (then only the layout
    /// is checked).
    pub sha256: Option<&'static str>,
}

/// A data set that `regulab data fetch` knows how to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEntry {
    pub name: &'static str,
    pub description: &'static str,
    /// Publisher base URLs, tried in order; file names are appended.
    pub base_urls: &'static [&'static str],
    pub files: &'static [RemoteFile],
    pub archive: ArchiveKind,
    /// The data folder's files (empty: a folder placed by hand is not recognized).
    pub local_files: &'static [LocalFile],
}

impl DatasetEntry {
    /// Total download size, when every file's size is known.
    pub fn download_bytes(&self) -> Option<u64> {
        self.files.iter().map(|file| file.bytes).sum()
    }
}

// GroupLens serves the same files over plain HTTP; it is tried only when HTTPS fails
// (the host's certificate has lapsed before), and the pinned checksums make the transport
// irrelevant to integrity.
const GROUPLENS: &[&str] = &[
    "https://files.grouplens.org/datasets/movielens/",
    "http://files.grouplens.org/datasets/movielens/",
];

// Checksum and size sources:
// * MovieLens MD5: the `<name>.zip.md5` files GroupLens publishes next to each zip. The
//   values for ml-100k, ml-1m, ml-10m, ml-20m and ml-25m are as pinned in
//   github.com/eli-osherovich/papers_with_code `datasets/movielens/dl_config.py`; the ml-32m
//   value is quoted identically by several public loaders (e.g. as a pooch `known_hash`).
// * MovieLens SHA-256 and sizes: tensorflow/datasets
//   `tensorflow_datasets/url_checksums/movielens.txt` (ml-100k, ml-1m, ml-20m, ml-25m,
//   ml-latest-small). ml-latest-small has no stable published MD5 (GroupLens regenerates
//   "latest" releases), so the TFDS SHA-256 of the 2018 release is the pin. The ml-10m and
//   ml-32m sizes are those checked by public download scripts.
// * MNIST and Fashion-MNIST MD5 and mirrors: torchvision `torchvision/datasets/mnist.py`
//   (`MNIST.resources`, `FashionMNIST.resources`); sizes from tensorflow/datasets
//   `url_checksums/mnist.txt` and `url_checksums/fashion_mnist.txt`.
// Per-file SHA-256 of the unpacked folders, so that a folder placed by hand is verified like
// a download. ml-100k: computed from the files of ml-100k.zip; u.data, u.item, u.user and
// README agree with the values public loaders pin (e.g. ankane/cmfrec's Ruby loader and
// several course checkers). The zip's scripts (allbut.pl, mku.sh) are not needed.
// Fashion-MNIST: SHA-256 of the uncompressed IDX files, whose MD5s equal the published ones
// (f4a8712d..., 9018921c..., 8181f547..., 15d48437...). Other data sets: the layout only.
const ML_100K_FILES: &[LocalFile] = &[
    LocalFile {
        name: "README",
        required: false,
        sha256: Some("4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
    },
    LocalFile {
        name: "u.data",
        required: true,
        sha256: Some("06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    },
    LocalFile {
        name: "u.genre",
        required: true,
        sha256: Some("9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
    },
    LocalFile {
        name: "u.info",
        required: false,
        sha256: Some("5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
    },
    LocalFile {
        name: "u.item",
        required: true,
        sha256: Some("553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    },
    LocalFile {
        name: "u.occupation",
        required: false,
        sha256: Some("cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
    },
    LocalFile {
        name: "u.user",
        required: true,
        sha256: Some("f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
    },
    LocalFile {
        name: "u1.base",
        required: true,
        sha256: Some("ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a"),
    },
    LocalFile {
        name: "u1.test",
        required: true,
        sha256: Some("18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"),
    },
    LocalFile {
        name: "u2.base",
        required: true,
        sha256: Some("6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e"),
    },
    LocalFile {
        name: "u2.test",
        required: true,
        sha256: Some("4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3"),
    },
    LocalFile {
        name: "u3.base",
        required: true,
        sha256: Some("afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d"),
    },
    LocalFile {
        name: "u3.test",
        required: true,
        sha256: Some("0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d"),
    },
    LocalFile {
        name: "u4.base",
        required: true,
        sha256: Some("219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca"),
    },
    LocalFile {
        name: "u4.test",
        required: true,
        sha256: Some("7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9"),
    },
    LocalFile {
        name: "u5.base",
        required: true,
        sha256: Some("a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485"),
    },
    LocalFile {
        name: "u5.test",
        required: true,
        sha256: Some("351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634"),
    },
    LocalFile {
        name: "ua.base",
        required: true,
        sha256: Some("67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2"),
    },
    LocalFile {
        name: "ua.test",
        required: true,
        sha256: Some("d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42"),
    },
    LocalFile {
        name: "ub.base",
        required: true,
        sha256: Some("237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881"),
    },
    LocalFile {
        name: "ub.test",
        required: true,
        sha256: Some("d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da"),
    },
];

const FASHION_MNIST_FILES: &[LocalFile] = &[
    LocalFile {
        name: "train-images-idx3-ubyte",
        required: true,
        sha256: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    },
    LocalFile {
        name: "train-labels-idx1-ubyte",
        required: true,
        sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    },
    LocalFile {
        name: "t10k-images-idx3-ubyte",
        required: true,
        sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    },
    LocalFile {
        name: "t10k-labels-idx1-ubyte",
        required: true,
        sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
];

const MNIST_FILES: &[LocalFile] = &[
    LocalFile {
        name: "train-images-idx3-ubyte",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "train-labels-idx1-ubyte",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "t10k-images-idx3-ubyte",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "t10k-labels-idx1-ubyte",
        required: true,
        sha256: None,
    },
];

const ML_1M_FILES: &[LocalFile] = &[
    LocalFile {
        name: "ratings.dat",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "movies.dat",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "users.dat",
        required: true,
        sha256: None,
    },
];

const ML_10M_FILES: &[LocalFile] = &[
    LocalFile {
        name: "ratings.dat",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "movies.dat",
        required: true,
        sha256: None,
    },
];

const ML_CSV_FILES: &[LocalFile] = &[
    LocalFile {
        name: "ratings.csv",
        required: true,
        sha256: None,
    },
    LocalFile {
        name: "movies.csv",
        required: true,
        sha256: None,
    },
];

static REGISTRY: &[DatasetEntry] = &[
    DatasetEntry {
        name: "ml-100k",
        description: "MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, with the official u1..u5/ua/ub splits (1998)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-100k.zip",
            bytes: Some(4_924_029),
            md5: Some("0e33842e24a9c977be4e0107933c0723"),
            sha256: Some("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-100k" },
        local_files: ML_100K_FILES,
    },
    DatasetEntry {
        name: "ml-1m",
        description: "MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users (2003)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-1m.zip",
            bytes: Some(5_917_549),
            md5: Some("c4d9eecfca2ab87c1945afe126590906"),
            sha256: Some("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-1m" },
        local_files: ML_1M_FILES,
    },
    DatasetEntry {
        name: "ml-10m",
        description: "MovieLens 10M: 10,000,054 ratings (half stars) by 69,878 users (2009)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-10m.zip",
            bytes: Some(65_566_137),
            md5: Some("ce571fd55effeba0271552578f2648bd"),
            sha256: None,
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-10M100K" },
        local_files: ML_10M_FILES,
    },
    DatasetEntry {
        name: "ml-20m",
        description: "MovieLens 20M: 20,000,263 ratings (half stars) by 138,493 users (2015)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-20m.zip",
            bytes: Some(198_702_078),
            md5: Some("cd245b17a1ae2cc31bb14903e1204af3"),
            sha256: Some("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-20m" },
        local_files: ML_CSV_FILES,
    },
    DatasetEntry {
        name: "ml-25m",
        description: "MovieLens 25M: 25,000,095 ratings (half stars) by 162,541 users (2019)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-25m.zip",
            bytes: Some(261_978_986),
            md5: Some("6b51fb2759a8657d3bfcbfc42b592ada"),
            sha256: Some("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-25m" },
        local_files: ML_CSV_FILES,
    },
    DatasetEntry {
        name: "ml-32m",
        description: "MovieLens 32M: 32,000,204 ratings (half stars) by 200,948 users (2023)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-32m.zip",
            bytes: Some(238_950_008),
            md5: Some("d472be332d4daa821edc399621853b57"),
            sha256: None,
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-32m" },
        local_files: ML_CSV_FILES,
    },
    DatasetEntry {
        name: "ml-latest-small",
        description: "MovieLens latest small: 100,836 ratings (half stars) by 610 users (2018 release)",
        base_urls: GROUPLENS,
        files: &[RemoteFile {
            name: "ml-latest-small.zip",
            bytes: Some(978_202),
            md5: None,
            sha256: Some("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
        }],
        archive: ArchiveKind::Zip { top_folder: "ml-latest-small" },
        local_files: ML_CSV_FILES,
    },
    DatasetEntry {
        name: "mnist",
        description: "MNIST: 70,000 28x28 grayscale handwritten digits (60,000 train, 10,000 test), IDX .gz files",
        base_urls: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                bytes: Some(9_912_422),
                md5: Some("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                sha256: None,
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                bytes: Some(28_881),
                md5: Some("d53e105ee54ea40749a09fcbcd1e9432"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                bytes: Some(1_648_877),
                md5: Some("9fb629c4189551a2d022fa330f9573f3"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                bytes: Some(4_542),
                md5: Some("ec29112dd5afa0611ce80d1b7f02629c"),
                sha256: None,
            },
        ],
        archive: ArchiveKind::GzipFiles,
        local_files: MNIST_FILES,
    },
    DatasetEntry {
        name: "fashion-mnist",
        description: "Fashion-MNIST: 70,000 28x28 grayscale clothing images in 10 classes (60,000 train, 10,000 test), IDX .gz files",
        base_urls: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        files: &[
            RemoteFile {
                name: "train-images-idx3-ubyte.gz",
                bytes: Some(26_421_880),
                md5: Some("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                sha256: None,
            },
            RemoteFile {
                name: "train-labels-idx1-ubyte.gz",
                bytes: Some(29_515),
                md5: Some("25c81989df183df01b3e8a0aad5dffbe"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz",
                bytes: Some(4_422_102),
                md5: Some("bef4ecab320f06d8554ea6380940ec79"),
                sha256: None,
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz",
                bytes: Some(5_148),
                md5: Some("bb300cfdad3c16e7a12a480ee83cd310"),
                sha256: None,
            },
        ],
        archive: ArchiveKind::GzipFiles,
        local_files: FASHION_MNIST_FILES,
    },
];

/// Every known data set, in the order `regulab data list` shows them.
pub fn registry() -> &'static [DatasetEntry] {
    REGISTRY
}

pub fn known(name: &str) -> Option<&'static DatasetEntry> {
    REGISTRY.iter().find(|entry| entry.name == name)
}

pub(super) fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|entry| entry.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn check_entry(entry: &DatasetEntry) -> Result<()> {
    // Names become path components inside the cache.
    let plain = |name: &str| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(entry.name) || entry.name == DOWNLOADS_FOLDER {
        bail!(
            "data set name {:?}: use letters, digits, '-', '_' and '.', not starting with '.'",
            entry.name
        );
    }
    if entry.files.is_empty() {
        bail!("data set {}: no files to download", entry.name);
    }
    for file in entry.files {
        if !plain(file.name) {
            bail!("data set {}: bad file name {:?}", entry.name, file.name);
        }
        if file.md5.is_none() && file.sha256.is_none() {
            bail!(
                "data set {}: {} has no checksum to verify",
                entry.name,
                file.name
            );
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_checksums_well_formed() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|entry| entry.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for entry in REGISTRY {
            check_entry(entry).expect("valid entry");
            assert!(entry.download_bytes().is_some(), "{}", entry.name);
            for file in entry.files {
                if let Some(md5) = file.md5 {
                    assert_eq!(md5.len(), 32, "{}", file.name);
                    assert!(md5.chars().all(|c| c.is_ascii_hexdigit()));
                }
                if let Some(sha256) = file.sha256 {
                    assert_eq!(sha256.len(), 64, "{}", file.name);
                    assert!(sha256.chars().all(|c| c.is_ascii_hexdigit()));
                }
            }
        }
    }

    #[test]
    fn local_files_are_unique_with_well_formed_checksums() {
        for entry in REGISTRY {
            assert!(!entry.local_files.is_empty(), "{}", entry.name);
            assert!(
                entry.local_files.iter().any(|f| f.required),
                "{}",
                entry.name
            );
            let mut names: Vec<&str> = entry.local_files.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), entry.local_files.len(), "{}", entry.name);
            for file in entry.local_files.iter().filter_map(|f| f.sha256) {
                assert_eq!(file.len(), 64, "{}", entry.name);
                assert!(file
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn the_issue_lists_these_names() {
        for name in [
            "ml-100k",
            "ml-1m",
            "ml-10m",
            "ml-20m",
            "ml-25m",
            "ml-32m",
            "ml-latest-small",
            "mnist",
            "fashion-mnist",
        ] {
            assert!(known(name).is_some(), "{name}");
        }
        assert!(known("ml-5k").is_none());
    }
}
