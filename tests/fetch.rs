//! `regulab data fetch` against a local HTTP server on 127.0.0.1: good, corrupt, truncated,
//! missing and stalled downloads, mirrors, files placed by hand, and the CLI.

use md5::Md5;
use regulab::data::fetch::{
    self, ArchiveKind, DatasetEntry, FetchOptions, RemoteFile, COMPLETE_MARKER,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the server answers one path.
#[derive(Clone)]
enum Reply {
    File(Vec<u8>),
    /// Announces `declared` bytes, sends `body`, then closes the connection.
    Truncated {
        declared: usize,
        body: Vec<u8>,
    },
    /// Reads the request and never answers.
    Stall,
    /// Sends the headers and the first part of the body, then goes silent.
    StallInBody {
        declared: usize,
        body: Vec<u8>,
    },
}

struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (thread_routes, thread_requests) = (routes.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, requests) = (thread_routes.clone(), thread_requests.clone());
                thread::spawn(move || serve(stream, &routes, &requests));
            }
        });
        Server {
            base: format!("http://127.0.0.1:{port}/"),
            routes,
            requests,
        }
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_string(), reply);
    }

    fn url(&self, file: &str) -> String {
        format!("{}{file}", self.base)
    }

    fn request_count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Reply>>,
    requests: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(count) => request.extend_from_slice(&buffer[..count]),
        }
        if request.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    requests.lock().expect("requests").push(path.clone());
    let reply = routes.lock().expect("routes").get(&path).cloned();
    let head = |declared: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n")
    };
    let _ = match reply {
        Some(Reply::File(body)) => stream
            .write_all(head(body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Some(Reply::Truncated { declared, body }) => stream
            .write_all(head(declared).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Some(Reply::Stall) => {
            thread::sleep(Duration::from_secs(30));
            Ok(())
        }
        Some(Reply::StallInBody { declared, body }) => {
            let sent = stream
                .write_all(head(declared).as_bytes())
                .and_then(|()| stream.write_all(&body))
                .and_then(|()| stream.flush());
            thread::sleep(Duration::from_secs(30));
            sent
        }
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n",
        ),
    };
}

/// A URL where nothing listens: a port bound and released again.
fn refused_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

const RATINGS: &str = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n\
244\t51\t2\t880606923\n166\t346\t1\t886397596\n298\t474\t4\t884182806\n";
const RATING_COUNT: u64 = 6;

/// A small stand-in for ml-100k.zip: the same top folder, six ratings.
fn fixture_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer
        .add_directory("ml-100k/", options)
        .expect("zip directory");
    writer
        .start_file("ml-100k/u.data", options)
        .expect("zip file");
    writer.write_all(RATINGS.as_bytes()).expect("zip write");
    writer
        .start_file("ml-100k/README", options)
        .expect("zip file");
    writer.write_all(b"fixture\n").expect("zip write");
    writer.finish().expect("zip finish").into_inner()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A file description pinned to `body`'s real size and checksums.
fn pinned(name: &str, body: &[u8]) -> RemoteFile {
    RemoteFile {
        name: leak(name.to_string()),
        bytes: Some(body.len() as u64),
        md5: Some(leak(hex(&Md5::digest(body)))),
        sha256: Some(leak(hex(&Sha256::digest(body)))),
    }
}

fn entry(
    name: &str,
    base_urls: &[String],
    files: Vec<RemoteFile>,
    archive: ArchiveKind,
) -> DatasetEntry {
    let base_urls: Vec<&'static str> = base_urls.iter().map(|url| leak(url.clone())).collect();
    DatasetEntry {
        name: leak(name.to_string()),
        description: "test fixture",
        base_urls: Box::leak(base_urls.into_boxed_slice()),
        files: Box::leak(files.into_boxed_slice()),
        archive,
        local_files: &[],
    }
}

fn ml_entry(base: &str, archive_body: &[u8]) -> DatasetEntry {
    entry(
        "ml-100k",
        &[base.to_string()],
        vec![pinned("ml-100k.zip", archive_body)],
        ArchiveKind::Zip {
            top_folder: "ml-100k",
        },
    )
}

fn options(cache: &Path, timeout: Duration) -> FetchOptions {
    FetchOptions {
        cache_dir: Some(cache.to_path_buf()),
        mirror: None,
        progress: false,
        timeout,
    }
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for item in fs::read_dir(&folder).expect("read_dir").flatten() {
            let path = item.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn assert_cache_empty(cache: &Path) {
    let left = files_under(cache);
    assert!(left.is_empty(), "files left in the cache: {left:?}");
    assert!(fetch::cached_path("ml-100k", cache).is_none());
}

fn regulab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .output()
        .expect("run regulab")
}

#[test]
fn good_archive_is_verified_unpacked_and_readable_by_data_info() {
    let server = Server::start();
    let archive = fixture_zip();
    server.route("/ml-100k.zip", Reply::File(archive.clone()));
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &archive);
    let options = options(cache.path(), Duration::from_secs(5));

    let dir = fetch::fetch_entry(&ml, &options).expect("fetch");
    assert_eq!(dir, cache.path().join("ml-100k"));
    assert!(dir.join("u.data").is_file());
    assert!(dir.join(COMPLETE_MARKER).is_file());
    assert_eq!(
        fetch::cached_path("ml-100k", cache.path()),
        Some(dir.clone())
    );
    // Only the data folder remains: no archive, no temporaries, no downloads folder.
    let top: Vec<_> = fs::read_dir(cache.path())
        .expect("read_dir")
        .flatten()
        .map(|item| item.file_name())
        .collect();
    assert_eq!(top, vec![std::ffi::OsString::from("ml-100k")]);
    let marker: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join(COMPLETE_MARKER)).expect("marker"))
            .expect("marker json");
    assert_eq!(marker["files"][0]["source"], server.url("ml-100k.zip"));

    let output = regulab(&["data", "info", &dir.display().to_string(), "--json"]);
    assert!(output.status.success(), "{output:?}");
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stats json");
    assert_eq!(stats["ratings"], RATING_COUNT);

    // A second fetch finds the data in the cache and leaves the server alone.
    let requests = server.request_count();
    assert_eq!(fetch::fetch_entry(&ml, &options).expect("cached"), dir);
    assert_eq!(server.request_count(), requests);
    assert_eq!(
        fetch::resolve_named("ml-100k", false, &options).expect("resolve"),
        Some(dir.clone())
    );

    let listed = regulab(&[
        "data",
        "list",
        "--cache",
        &cache.path().display().to_string(),
    ]);
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains(&format!("cached: {}", dir.display())),
        "{text}"
    );
}

#[test]
fn corrupt_archive_is_deleted_and_the_mismatch_reported() {
    let server = Server::start();
    let archive = fixture_zip();
    let mut corrupt = archive.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    server.route("/ml-100k.zip", Reply::File(corrupt.clone()));
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &archive);

    let error = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(5)))
        .expect_err("checksum must fail");
    let message = format!("{error:#}");
    assert!(message.contains(&server.url("ml-100k.zip")), "{message}");
    assert!(message.contains("checksum mismatch"), "{message}");
    assert!(
        message.contains(&format!("md5 {}", hex(&Md5::digest(&archive)))),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "got {} bytes, md5 {}",
            corrupt.len(),
            hex(&Md5::digest(&corrupt))
        )),
        "{message}"
    );
    assert!(message.contains("deleted"), "{message}");
    assert_cache_empty(cache.path());
}

#[test]
fn truncated_transfer_leaves_nothing_behind() {
    let server = Server::start();
    let archive = fixture_zip();
    server.route(
        "/ml-100k.zip",
        Reply::Truncated {
            declared: archive.len(),
            body: archive[..archive.len() / 2].to_vec(),
        },
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &archive);

    let error = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(5)))
        .expect_err("truncation must fail");
    let message = format!("{error:#}");
    assert!(message.contains(&server.url("ml-100k.zip")), "{message}");
    assert!(message.contains("truncated"), "{message}");
    assert_cache_empty(cache.path());
}

#[test]
fn interrupted_download_restarts_cleanly() {
    let server = Server::start();
    let archive = fixture_zip();
    server.route(
        "/ml-100k.zip",
        Reply::Truncated {
            declared: archive.len(),
            body: archive[..100].to_vec(),
        },
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &archive);
    let options = options(cache.path(), Duration::from_secs(5));
    assert!(fetch::fetch_entry(&ml, &options).is_err());

    // What a killed run leaves: a partial download and a half-unpacked staging folder,
    // tagged with a process id that cannot be running.
    let downloads = cache.path().join("downloads").join("ml-100k");
    fs::create_dir_all(downloads.join(".unpack.4294967294-0/ml-100k")).expect("mkdir");
    fs::write(
        downloads.join(".unpack.4294967294-0/ml-100k/u.data"),
        "1\t1\t5\t0\n",
    )
    .expect("write");
    fs::write(
        downloads.join("ml-100k.zip.4294967294-0.part"),
        &archive[..10],
    )
    .expect("write");

    server.route("/ml-100k.zip", Reply::File(archive.clone()));
    let dir = fetch::fetch_entry(&ml, &options).expect("second try");
    assert_eq!(
        fs::read_to_string(dir.join("u.data")).expect("u.data"),
        RATINGS
    );
    assert!(!cache.path().join("downloads").exists());
}

#[test]
fn missing_file_names_the_url_and_the_status() {
    let server = Server::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &fixture_zip());

    let error = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(5)))
        .expect_err("404 must fail");
    let message = format!("{error:#}");
    assert!(message.contains(&server.url("ml-100k.zip")), "{message}");
    assert!(message.contains("HTTP status 404 Not Found"), "{message}");
    assert_cache_empty(cache.path());
}

#[test]
fn stalled_server_gives_an_error_within_the_timeout() {
    let server = Server::start();
    server.route("/ml-100k.zip", Reply::Stall);
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &fixture_zip());

    let started = Instant::now();
    let error = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(1)))
        .expect_err("a stall must fail");
    let elapsed = started.elapsed();
    let message = format!("{error:#}");
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?}: {message}"
    );
    assert!(message.contains(&server.url("ml-100k.zip")), "{message}");
    assert!(message.contains("no answer within 1 s"), "{message}");
    assert_cache_empty(cache.path());
}

#[test]
fn server_stalling_inside_the_body_gives_an_error_within_the_timeout() {
    let server = Server::start();
    let archive = fixture_zip();
    server.route(
        "/ml-100k.zip",
        Reply::StallInBody {
            declared: archive.len(),
            body: archive[..50].to_vec(),
        },
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&server.base, &archive);

    let started = Instant::now();
    let error = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(1)))
        .expect_err("a stall must fail");
    let elapsed = started.elapsed();
    let message = format!("{error:#}");
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?}: {message}"
    );
    assert!(message.contains(&server.url("ml-100k.zip")), "{message}");
    assert!(message.contains("1 s"), "{message}");
    assert!(message.contains("after 50 bytes"), "{message}");
    assert_cache_empty(cache.path());
}

#[test]
fn refused_connection_says_where_to_put_the_file_and_then_uses_it() {
    let base = refused_base();
    let archive = fixture_zip();
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = ml_entry(&base, &archive);
    let options = options(cache.path(), Duration::from_secs(2));

    let error = fetch::fetch_entry(&ml, &options).expect_err("nothing listens");
    let message = format!("{error:#}");
    let by_hand = cache
        .path()
        .join("downloads")
        .join("ml-100k")
        .join("ml-100k.zip");
    assert!(message.contains(&format!("{base}ml-100k.zip")), "{message}");
    assert!(message.contains("connection refused"), "{message}");
    assert!(
        message.contains(&format!("save it as {}", by_hand.display())),
        "{message}"
    );
    assert_cache_empty(cache.path());

    // Following the advice works without any network.
    fs::create_dir_all(by_hand.parent().expect("parent")).expect("mkdir");
    fs::write(&by_hand, &archive).expect("write");
    let dir = fetch::fetch_entry(&ml, &options).expect("fetch from the hand-placed file");
    assert!(dir.join("u.data").is_file());
    assert!(!by_hand.exists());
}

#[test]
fn mirror_replaces_the_publisher_and_gzip_files_stay_compressed() {
    let server = Server::start();
    let images = b"\x1f\x8bnot really gzip, kept byte for byte".to_vec();
    let labels = b"\x1f\x8blabels".to_vec();
    server.route("/images.gz", Reply::File(images.clone()));
    server.route("/labels.gz", Reply::File(labels.clone()));
    let cache = tempfile::tempdir().expect("tempdir");
    let digits = entry(
        "digits",
        &[refused_base()],
        vec![pinned("images.gz", &images), pinned("labels.gz", &labels)],
        ArchiveKind::GzipFiles,
    );
    let mut options = options(cache.path(), Duration::from_secs(5));
    options.mirror = Some(server.base.trim_end_matches('/').to_string());

    let dir = fetch::fetch_entry(&digits, &options).expect("fetch from the mirror");
    assert_eq!(dir, cache.path().join("digits"));
    assert_eq!(fs::read(dir.join("images.gz")).expect("images"), images);
    assert_eq!(fs::read(dir.join("labels.gz")).expect("labels"), labels);
    assert!(dir.join(COMPLETE_MARKER).is_file());
}

#[test]
fn refused_multi_file_download_lists_every_missing_file() {
    let base = refused_base();
    let cache = tempfile::tempdir().expect("tempdir");
    let digits = entry(
        "digits",
        std::slice::from_ref(&base),
        vec![
            pinned("images.gz", b"images"),
            pinned("labels.gz", b"labels"),
        ],
        ArchiveKind::GzipFiles,
    );
    let error = fetch::fetch_entry(&digits, &options(cache.path(), Duration::from_secs(2)))
        .expect_err("nothing listens");
    let message = format!("{error:#}");
    let folder = cache.path().join("downloads").join("digits");
    assert!(
        message.contains(&format!(
            "download images.gz, labels.gz from {base} into the folder {}",
            folder.display()
        )),
        "{message}"
    );
    assert!(message.contains("regulab data fetch digits"), "{message}");
}

#[test]
fn next_publisher_url_is_tried_when_the_first_fails() {
    let server = Server::start();
    let archive = fixture_zip();
    server.route("/ml-100k.zip", Reply::File(archive.clone()));
    let cache = tempfile::tempdir().expect("tempdir");
    let ml = entry(
        "ml-100k",
        &[refused_base(), server.base.clone()],
        vec![pinned("ml-100k.zip", &archive)],
        ArchiveKind::Zip {
            top_folder: "ml-100k",
        },
    );
    let dir = fetch::fetch_entry(&ml, &options(cache.path(), Duration::from_secs(5)))
        .expect("second URL");
    assert!(dir.join("u.data").is_file());
}

#[test]
fn known_name_without_download_says_which_command_to_run() {
    let cache = tempfile::tempdir().expect("tempdir");
    let options = options(cache.path(), Duration::from_secs(1));

    let error = fetch::resolve_named("ml-100k", false, &options).expect_err("not cached");
    let message = format!("{error:#}");
    assert!(message.contains("regulab data fetch ml-100k"), "{message}");
    assert!(message.contains("--download"), "{message}");
    assert!(message.contains("--data PATH"), "{message}");
    assert!(
        message.contains("regulab data add ml-100k PATH"),
        "{message}"
    );
    assert_cache_empty(cache.path());

    assert_eq!(
        fetch::resolve_named("data/my-ratings.csv", false, &options).expect("a path"),
        None
    );
    assert_eq!(
        fetch::resolve_named("synthetic", true, &options).expect("not a name"),
        None
    );
}

#[test]
fn cli_fetch_reports_a_checksum_mismatch_from_the_mirror_and_leaves_nothing() {
    // The fixture cannot match the real ml-100k.zip checksums, so the command must refuse
    // it; a good download is covered through the library above.
    let server = Server::start();
    server.route("/ml-100k.zip", Reply::File(fixture_zip()));
    let cache = tempfile::tempdir().expect("tempdir");

    let output = regulab(&[
        "data",
        "fetch",
        "ml-100k",
        "--mirror",
        &server.base,
        "--cache",
        &cache.path().display().to_string(),
        "--timeout",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains(&server.url("ml-100k.zip")), "{stderr}");
    assert!(
        stderr.contains("expected 4924029 bytes, md5 0e33842e24a9c977be4e0107933c0723"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 2, "{stderr}");
    assert_cache_empty(cache.path());
}

#[test]
fn cli_list_shows_every_known_data_set() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_arg = cache.path().display().to_string();

    let output = regulab(&["data", "list", "--cache", &cache_arg, "--json"]);
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let names: Vec<&str> = listed["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .map(|dataset| dataset["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "ml-100k",
            "ml-1m",
            "ml-10m",
            "ml-20m",
            "ml-25m",
            "ml-32m",
            "ml-latest-small",
            "mnist",
            "fashion-mnist"
        ]
    );
    assert!(listed["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .all(|dataset| dataset["cached"].is_null()));

    let text = regulab(&["data", "list", "--cache", &cache_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("4.7 MiB"), "{text}");
    assert!(text.contains("not cached"), "{text}");

    let unknown = regulab(&["data", "fetch", "ml-5k", "--cache", &cache_arg]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("unknown data set \"ml-5k\""), "{stderr}");
    assert!(stderr.contains("fashion-mnist"), "{stderr}");
}
