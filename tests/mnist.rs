//! The IDX image source on the real Fashion-MNIST files, and `regulab data info` on them and
//! on a broken copy.

use regulab::data::mnist;
use std::path::Path;
use std::process::Command;

const FASHION_MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/fashion-mnist");

fn fashion_mnist_dir() -> &'static Path {
    let dir = Path::new(FASHION_MNIST);
    assert!(
        mnist::is_idx_dir(dir),
        "{FASHION_MNIST}: the Fashion-MNIST IDX files are expected beside the repository"
    );
    dir
}

#[test]
fn fashion_mnist_loads_balanced_60000_and_10000_images() {
    let dataset = mnist::load(fashion_mnist_dir()).unwrap();
    assert_eq!((dataset.rows, dataset.cols, dataset.classes), (28, 28, 10));
    assert_eq!(dataset.train.count, 60000);
    assert_eq!(dataset.test.count, 10000);
    assert_eq!(dataset.train.images.len(), 60000 * 28 * 28);
    assert_eq!(dataset.test.labels.len(), 10000);
    let stats = dataset.stats();
    assert_eq!(stats.train.class_counts, vec![6000; 10]);
    assert_eq!(stats.test.class_counts, vec![1000; 10]);

    let (pixels, labels) = dataset.test.to_tensors(dataset.rows * dataset.cols);
    assert_eq!(pixels.size(), vec![10000, 784]);
    assert_eq!(labels.size(), vec![10000]);
    let (low, high) = (
        pixels.min().double_value(&[]),
        pixels.max().double_value(&[]),
    );
    assert!(
        low >= 0.0 && high <= 1.0 && high > 0.0,
        "pixels in [{low}, {high}]"
    );
}

#[test]
fn data_info_json_reports_fashion_mnist_counts() {
    let output = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(["data", "info", FASHION_MNIST, "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "data info failed: {stderr}");
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stats["name"], "fashion-mnist");
    assert_eq!(
        (stats["rows"].clone(), stats["cols"].clone()),
        (28.into(), 28.into())
    );
    assert_eq!(stats["classes"], 10);
    assert_eq!(stats["train"]["images"], 60000);
    assert_eq!(stats["train"]["labels"], 60000);
    assert_eq!(stats["test"]["images"], 10000);
    assert_eq!(stats["test"]["labels"], 10000);
    assert_eq!(
        stats["train"]["class_counts"],
        serde_json::json!(vec![6000; 10])
    );
    assert_eq!(
        stats["test"]["class_counts"],
        serde_json::json!(vec![1000; 10])
    );
}

#[test]
fn data_info_text_lists_class_counts() {
    let output = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(["data", "info", FASHION_MNIST])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("image size  28x28"), "{text}");
    assert!(text.contains("60000 images, 60000 labels"), "{text}");
    assert!(text.contains("    9       6000      1000"), "{text}");
}

/// An IDX file: `magic`, the big-endian `sizes`, then `data`.
fn idx_bytes(magic: u32, sizes: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for size in sizes {
        bytes.extend_from_slice(&size.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn data_info_on_a_truncated_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        // Three images of 4x4 promised, two and a half delivered.
        (
            "train-images-idx3-ubyte",
            idx_bytes(mnist::IMAGES_MAGIC, &[3, 4, 4], &[1; 40]),
        ),
        (
            "train-labels-idx1-ubyte",
            idx_bytes(mnist::LABELS_MAGIC, &[3], &[0, 1, 0]),
        ),
        (
            "t10k-images-idx3-ubyte",
            idx_bytes(mnist::IMAGES_MAGIC, &[1, 4, 4], &[1; 16]),
        ),
        (
            "t10k-labels-idx1-ubyte",
            idx_bytes(mnist::LABELS_MAGIC, &[1], &[1]),
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(["data", "info"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "succeeded on a truncated file");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("train-images-idx3-ubyte: truncated: expected 64 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("found 56"), "{stderr}");
}
