//! Image classification data in IDX files, the layout of MNIST and Fashion-MNIST: one
//! directory with four files, each either raw or gzip-compressed.
//!
//! IDX layout (every integer a big-endian u32): a magic number, one size per dimension, then
//! the unsigned bytes in row-major order. Image files have magic 2051 and sizes
//! `count, rows, cols`; label files have magic 2049 and the size `count`.
//!
//! The number of classes is the largest training label plus one, so that data sets with more
//! than ten classes (EMNIST letters, for one) load too; a test label outside that range is an
//! error, because a model sized on the training data could never predict it.

use anyhow::{bail, Result};
use flate2::read::MultiGzDecoder;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
const FILE_NAMES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images and their labels: `images` holds `count * rows * cols` pixels, image after image,
/// each row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageSplit {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub count: usize,
}

#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// The directory's name: `fashion-mnist`, `mnist`.
    pub name: String,
    pub source: PathBuf,
    pub rows: usize,
    pub cols: usize,
    pub classes: usize,
    pub train: ImageSplit,
    pub test: ImageSplit,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageStats {
    pub name: String,
    pub source: String,
    pub rows: usize,
    pub cols: usize,
    pub classes: usize,
    pub train: ImageSplitStats,
    pub test: ImageSplitStats,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageSplitStats {
    pub images: usize,
    pub labels: usize,
    /// Images per label, indexed by label.
    pub class_counts: Vec<usize>,
}

impl ImageSplit {
    /// Pixels as f32 in [0,1] (x/255), shape [count, rows*cols], and labels as i64, as tch
    /// tensors on CPU.
    ///
    /// Panics when `images` does not hold `count * rows_cols` pixels: the sizes come from
    /// `load`, so a mismatch is a caller's mistake, not bad data.
    pub fn to_tensors(&self, rows_cols: usize) -> (Tensor, Tensor) {
        assert_eq!(
            self.images.len(),
            self.count * rows_cols,
            "{} images of {rows_cols} pixels need that many pixels",
            self.count
        );
        let mut pixels = Tensor::from_slice(&self.images)
            .view([self.count as i64, rows_cols as i64])
            .to_kind(Kind::Float);
        pixels /= 255.0;
        let labels = Tensor::from_slice(&self.labels).to_kind(Kind::Int64);
        (pixels, labels)
    }

    /// The first `limit` images (all of them without a limit).
    pub fn first(&self, pixels_per_image: usize, limit: Option<usize>) -> ImageSplit {
        let count = limit.map_or(self.count, |limit| limit.min(self.count));
        ImageSplit {
            images: self.images[..count * pixels_per_image].to_vec(),
            labels: self.labels[..count].to_vec(),
            count,
        }
    }

    /// The images at `positions`, in that order.
    fn select(&self, positions: &[usize]) -> ImageSplit {
        let size = self.images.len().checked_div(self.count).unwrap_or(0);
        let mut images = Vec::with_capacity(positions.len() * size);
        let mut labels = Vec::with_capacity(positions.len());
        for &p in positions {
            images.extend_from_slice(&self.images[p * size..(p + 1) * size]);
            labels.push(self.labels[p]);
        }
        ImageSplit {
            images,
            labels,
            count: positions.len(),
        }
    }

    fn stats(&self, classes: usize) -> ImageSplitStats {
        let mut class_counts = vec![0usize; classes];
        for &label in &self.labels {
            let label = label as usize;
            if label >= class_counts.len() {
                class_counts.resize(label + 1, 0);
            }
            class_counts[label] += 1;
        }
        ImageSplitStats {
            images: self.count,
            labels: self.labels.len(),
            class_counts,
        }
    }
}

impl ImageDataset {
    pub fn stats(&self) -> ImageStats {
        ImageStats {
            name: self.name.clone(),
            source: self.source.display().to_string(),
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            train: self.train.stats(self.classes),
            test: self.test.stats(self.classes),
        }
    }
}

/// Splits `split` into (kept, held out) for validation: a seeded random `fraction_kept` of the
/// images (clamped to [0, 1], rounded) stays for training. Both parts keep the file order, so
/// the result depends only on the seed and the fraction.
pub fn holdout(split: &ImageSplit, fraction_kept: f64, seed: u64) -> (ImageSplit, ImageSplit) {
    let mut order: Vec<usize> = (0..split.count).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let keep = ((split.count as f64) * fraction_kept.clamp(0.0, 1.0)).round() as usize;
    let (kept, held_out) = order.split_at_mut(keep.min(split.count));
    kept.sort_unstable();
    held_out.sort_unstable();
    (split.select(kept), split.select(held_out))
}

/// The file for `base` in `dir`: the raw file when present (no decompression needed), else
/// `base.gz`.
fn find_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let raw = dir.join(base);
    if raw.is_file() {
        return Some(raw);
    }
    let compressed = dir.join(format!("{base}.gz"));
    compressed.is_file().then_some(compressed)
}

/// True when `path` is a directory holding the four IDX files, each raw or `.gz`.
pub fn is_idx_dir(path: &Path) -> bool {
    path.is_dir()
        && FILE_NAMES
            .iter()
            .all(|base| find_file(path, base).is_some())
}

/// Reads and checks the four IDX files in `dir`.
pub fn load(dir: &Path) -> Result<ImageDataset> {
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    let mut paths = Vec::with_capacity(FILE_NAMES.len());
    for base in FILE_NAMES {
        match find_file(dir, base) {
            Some(path) => paths.push(path),
            None => bail!(
                "{}: missing {base} (raw or .gz) for an IDX image data set",
                dir.display()
            ),
        }
    }
    let (train, train_size) = read_split(&paths[0], &paths[1])?;
    let (test, test_size) = read_split(&paths[2], &paths[3])?;
    if test_size != train_size {
        bail!(
            "{}: images are {}x{}, but the training images in {} are {}x{}",
            paths[2].display(),
            test_size.0,
            test_size.1,
            paths[0].display(),
            train_size.0,
            train_size.1
        );
    }
    let classes = train.labels.iter().max().map_or(0, |&m| m as usize + 1);
    if let Some(position) = test.labels.iter().position(|&l| l as usize >= classes) {
        bail!(
            "{}: label {} of image {position} never occurs in the training labels (0..{})",
            paths[3].display(),
            test.labels[position],
            classes - 1
        );
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    Ok(ImageDataset {
        name,
        source: dir.to_path_buf(),
        rows: train_size.0,
        cols: train_size.1,
        classes,
        train,
        test,
    })
}

/// One split from its image and label files, with the image size (rows, cols).
/// One IDX images file (raw or .gz) without labels, for predictions: the images (labels
/// empty, zero-filled) and their (rows, cols).
pub fn read_images(path: &Path) -> Result<(ImageSplit, (usize, usize))> {
    let images = read_idx(path, IdxKind::Images)?;
    let (count, rows, cols) = (images.sizes[0], images.sizes[1], images.sizes[2]);
    let split = ImageSplit {
        images: images.data,
        labels: vec![0; count],
        count,
    };
    Ok((split, (rows, cols)))
}

fn read_split(images_path: &Path, labels_path: &Path) -> Result<(ImageSplit, (usize, usize))> {
    let images = read_idx(images_path, IdxKind::Images)?;
    let labels = read_idx(labels_path, IdxKind::Labels)?;
    let (count, rows, cols) = (images.sizes[0], images.sizes[1], images.sizes[2]);
    if labels.sizes[0] != count {
        bail!(
            "{}: {} labels, but {} has {count} images",
            labels_path.display(),
            labels.sizes[0],
            images_path.display()
        );
    }
    let split = ImageSplit {
        images: images.data,
        labels: labels.data,
        count,
    };
    Ok((split, (rows, cols)))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IdxKind {
    Images,
    Labels,
}

impl IdxKind {
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => IMAGES_MAGIC,
            IdxKind::Labels => LABELS_MAGIC,
        }
    }

    fn dimensions(self) -> usize {
        match self {
            IdxKind::Images => 3,
            IdxKind::Labels => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        }
    }
}

struct IdxFile {
    sizes: Vec<usize>,
    data: Vec<u8>,
}

/// Reads one IDX file, checking the magic number, the sizes and that the length is exactly
/// header + payload. Reading stops one byte past the expected end, so a corrupt header cannot
/// make it read (or allocate) more than the file holds.
fn read_idx(path: &Path, kind: IdxKind) -> Result<IdxFile> {
    let file =
        File::open(path).map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", path.display()))?;
    let compressed = path.extension().is_some_and(|e| e == "gz");
    let mut reader: Box<dyn Read> = if compressed {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let read_failed = |e: io::Error| {
        if compressed {
            anyhow::anyhow!("{}: corrupt or truncated gzip stream: {e}", path.display())
        } else {
            anyhow::anyhow!("{}: read error: {e}", path.display())
        }
    };
    let after = if compressed {
        " after decompression"
    } else {
        ""
    };
    let header_len = 4 * (1 + kind.dimensions());
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut reader, &mut header).map_err(read_failed)?;
    if got < 4 {
        bail!(
            "{}: truncated: {got} bytes{after}, too short for an IDX header",
            path.display()
        );
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != kind.magic() {
        let hint = if magic >> 16 == 0x1f8b {
            ", a gzip header: name the file .gz"
        } else if magic == IMAGES_MAGIC {
            ", that of an image file"
        } else if magic == LABELS_MAGIC {
            ", that of a label file"
        } else {
            ""
        };
        bail!(
            "{}: wrong magic number {magic} (0x{magic:08x}{hint}), expected {} for IDX {}",
            path.display(),
            kind.magic(),
            kind.name()
        );
    }
    if got < header_len {
        bail!(
            "{}: truncated: {got} bytes{after}, expected a {header_len}-byte IDX header",
            path.display()
        );
    }
    let sizes: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let count = sizes[0];
    if count == 0 {
        bail!("{}: holds no {}", path.display(), kind.name());
    }
    let contents = match kind {
        IdxKind::Images => {
            let (rows, cols) = (sizes[1], sizes[2]);
            if rows == 0 || cols == 0 {
                bail!("{}: image size {rows}x{cols} is empty", path.display());
            }
            format!("{count} images of {rows}x{cols}")
        }
        IdxKind::Labels => format!("{count} labels"),
    };
    let payload = sizes
        .iter()
        .try_fold(1usize, |product, &s| product.checked_mul(s));
    let Some(payload) = payload else {
        bail!("{}: {contents} is too large to address", path.display());
    };
    let expected = header_len + payload;
    let mut data = Vec::with_capacity(payload.min(1 << 28));
    reader
        .by_ref()
        .take(payload as u64 + 1)
        .read_to_end(&mut data)
        .map_err(read_failed)?;
    if data.len() != payload {
        let (problem, found) = if data.len() < payload {
            ("truncated", header_len + data.len())
        } else {
            let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_failed)?;
            ("trailing bytes", header_len + data.len() + rest as usize)
        };
        bail!(
            "{}: {problem}: expected {expected} bytes{after} ({header_len}-byte header + {contents}), found {found}",
            path.display()
        );
    }
    Ok(IdxFile { sizes, data })
}

/// Fills `buffer` as far as the reader allows; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    /// An IDX file: `magic`, the big-endian `sizes`, then `data`.
    fn idx_bytes(magic: u32, sizes: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_be_bytes().to_vec();
        for size in sizes {
            bytes.extend_from_slice(&size.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// Train: four 2x3 images, labels 0 1 2 1. Test: two images, labels 2 0. Pixel values
    /// count up from 0 in train and down from 255 in test, so every pixel's place is checked.
    struct Fixture {
        train_pixels: Vec<u8>,
        test_pixels: Vec<u8>,
    }

    const TRAIN_LABEL_VALUES: [u8; 4] = [0, 1, 2, 1];
    const TEST_LABEL_VALUES: [u8; 2] = [2, 0];

    fn write_fixture(dir: &Path, compressed: bool) -> Fixture {
        let train_pixels: Vec<u8> = (0..24).collect();
        let test_pixels: Vec<u8> = (0..12).map(|k| 255 - k).collect();
        let files = [
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[4, 2, 3], &train_pixels),
            ),
            (
                TRAIN_LABELS,
                idx_bytes(LABELS_MAGIC, &[4], &TRAIN_LABEL_VALUES),
            ),
            (
                TEST_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[2, 2, 3], &test_pixels),
            ),
            (
                TEST_LABELS,
                idx_bytes(LABELS_MAGIC, &[2], &TEST_LABEL_VALUES),
            ),
        ];
        for (name, bytes) in files {
            if compressed {
                write_file(dir, &format!("{name}.gz"), &gzip(&bytes));
            } else {
                write_file(dir, name, &bytes);
            }
        }
        Fixture {
            train_pixels,
            test_pixels,
        }
    }

    fn check_fixture(dataset: &ImageDataset, fixture: &Fixture) {
        assert_eq!((dataset.rows, dataset.cols, dataset.classes), (2, 3, 3));
        assert_eq!(dataset.train.count, 4);
        assert_eq!(dataset.train.images, fixture.train_pixels);
        assert_eq!(dataset.train.labels, TRAIN_LABEL_VALUES);
        assert_eq!(dataset.test.count, 2);
        assert_eq!(dataset.test.images, fixture.test_pixels);
        assert_eq!(dataset.test.labels, TEST_LABEL_VALUES);
    }

    #[test]
    fn loads_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = write_fixture(dir.path(), false);
        assert!(is_idx_dir(dir.path()));
        let dataset = load(dir.path()).unwrap();
        check_fixture(&dataset, &fixture);
        assert_eq!(dataset.source, dir.path());
    }

    #[test]
    fn loads_gzip_files_and_prefers_raw_ones() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = write_fixture(dir.path(), true);
        assert!(is_idx_dir(dir.path()));
        check_fixture(&load(dir.path()).unwrap(), &fixture);
        write_file(
            dir.path(),
            TRAIN_LABELS,
            &idx_bytes(LABELS_MAGIC, &[4], &[2, 2, 2, 2]),
        );
        assert_eq!(load(dir.path()).unwrap().train.labels, vec![2, 2, 2, 2]);
    }

    #[test]
    fn idx_dir_needs_all_four_files() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), false);
        std::fs::remove_file(dir.path().join(TEST_LABELS)).unwrap();
        assert!(!is_idx_dir(dir.path()));
        assert!(!is_idx_dir(&dir.path().join(TRAIN_IMAGES)));
        let error = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(error.contains("missing t10k-labels-idx1-ubyte"), "{error}");
    }

    #[test]
    fn broken_files_are_errors_naming_the_file_and_problem() {
        let good_images = idx_bytes(IMAGES_MAGIC, &[4, 2, 3], &[7; 24]);
        let mut corrupt_gzip = gzip(&good_images);
        // Past the 10-byte gzip header, inside the deflate data.
        for byte in &mut corrupt_gzip[10..20] {
            *byte ^= 0x5a;
        }
        let truncated_gzip = gzip(&good_images)[..20].to_vec();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                TRAIN_IMAGES,
                idx_bytes(LABELS_MAGIC, &[4, 2, 3], &[7; 24]),
                "wrong magic number 2049 (0x00000801, that of a label file), expected 2051",
            ),
            (
                TRAIN_IMAGES,
                gzip(&good_images),
                "a gzip header: name the file .gz",
            ),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[4, 2, 3], &[7; 23]),
                "truncated: expected 40 bytes (16-byte header + 4 images of 2x3), found 39",
            ),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[4, 2, 3], &[7; 27]),
                "trailing bytes: expected 40 bytes (16-byte header + 4 images of 2x3), found 43",
            ),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[4, 2], &[]),
                "truncated: 12 bytes, expected a 16-byte IDX header",
            ),
            (TRAIN_IMAGES, vec![0, 0], "too short for an IDX header"),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[0, 2, 3], &[]),
                "holds no images",
            ),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[4, 0, 3], &[]),
                "image size 0x3 is empty",
            ),
            (
                TRAIN_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[]),
                "too large",
            ),
            (
                TRAIN_LABELS,
                idx_bytes(LABELS_MAGIC, &[3], &[0, 1, 2]),
                "3 labels, but",
            ),
            (
                TEST_LABELS,
                idx_bytes(LABELS_MAGIC, &[2], &[3, 0]),
                "label 3 of image 0 never occurs in the training labels (0..2)",
            ),
            (
                TEST_IMAGES,
                idx_bytes(IMAGES_MAGIC, &[2, 3, 2], &[0; 12]),
                "images are 3x2, but the training images",
            ),
            (
                "train-images-idx3-ubyte.gz",
                corrupt_gzip,
                "corrupt or truncated gzip stream",
            ),
            (
                "train-images-idx3-ubyte.gz",
                truncated_gzip,
                "corrupt or truncated gzip stream",
            ),
            (
                "train-images-idx3-ubyte.gz",
                good_images.clone(),
                "corrupt or truncated gzip stream",
            ),
        ];
        for (name, bytes, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            write_fixture(dir.path(), false);
            if name.ends_with(".gz") {
                std::fs::remove_file(dir.path().join(name.trim_end_matches(".gz"))).unwrap();
            }
            write_file(dir.path(), name, &bytes);
            let error = format!("{:#}", load(dir.path()).unwrap_err());
            assert!(error.contains(want), "{name}: {error:?} lacks {want:?}");
            assert!(error.contains(name), "{error:?} does not name {name}");
            assert!(!error.contains('\n'), "{error:?} is not one line");
        }
    }

    #[test]
    fn tensors_scale_pixels_and_widen_labels() {
        let split = ImageSplit {
            images: vec![0, 255, 51, 102, 0, 0],
            labels: vec![9, 4],
            count: 2,
        };
        let (pixels, labels) = split.to_tensors(3);
        assert_eq!(pixels.size(), vec![2, 3]);
        assert_eq!(pixels.kind(), Kind::Float);
        let values: Vec<f32> = Vec::try_from(pixels.flatten(0, 1)).unwrap();
        assert_eq!(values, vec![0.0, 1.0, 0.2, 0.4, 0.0, 0.0]);
        assert_eq!(labels.kind(), Kind::Int64);
        assert_eq!(Vec::<i64>::try_from(labels).unwrap(), vec![9, 4]);
    }

    #[test]
    fn holdout_is_seeded_and_partitions_the_images() {
        // Two pixels per image, both equal to the image's position, so images stay traceable.
        let split = ImageSplit {
            images: (0..100u8).flat_map(|k| [k, k]).collect(),
            labels: (0..100u8).map(|k| k % 10).collect(),
            count: 100,
        };
        let (kept, held_out) = holdout(&split, 0.8, 3);
        assert_eq!((kept.count, held_out.count), (80, 20));
        assert_eq!(kept.images.len(), 160);
        assert_eq!(kept.labels.len(), 80);
        for part in [&kept, &held_out] {
            for (position, pair) in part.images.chunks(2).enumerate() {
                assert_eq!(pair[0], pair[1]);
                assert_eq!(part.labels[position], pair[0] % 10);
            }
        }
        let mut all: Vec<u8> = kept
            .images
            .iter()
            .chain(&held_out.images)
            .step_by(2)
            .copied()
            .collect();
        assert!(all.windows(2).take(79).all(|w| w[0] < w[1]));
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<u8>>());
        assert_eq!(holdout(&split, 0.8, 3), (kept.clone(), held_out));
        assert_ne!(holdout(&split, 0.8, 4).0, kept);
        assert_eq!(holdout(&split, 1.0, 3).1.count, 0);
    }

    #[test]
    fn stats_count_images_per_class() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), true);
        let stats = load(dir.path()).unwrap().stats();
        assert_eq!(stats.train.class_counts, vec![1, 2, 1]);
        assert_eq!(stats.test.class_counts, vec![1, 0, 1]);
        assert_eq!((stats.train.images, stats.train.labels), (4, 4));
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["test"]["images"], 2);
        assert_eq!(json["classes"], 3);
    }
}
