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

/// A data set that `regulab data fetch` knows how to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEntry {
    pub name: &'static str,
    pub description: &'static str,
    /// Publisher base URLs, tried in order; file names are appended.
    pub base_urls: &'static [&'static str],
    pub files: &'static [RemoteFile],
    pub archive: ArchiveKind,
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
