//! MovieLens rating files in their three published layouts, read streaming.
//!
//! * ml-100k: `u.data` and the official splits `u1.base/u1.test` .. `u5`, `ua`, `ub`
//!   (`user \t item \t rating \t timestamp`).
//! * ml-1m, ml-10m: `ratings.dat` (`user::item::rating::timestamp`).
//! * ml-20m, ml-25m, ml-32m, ml-latest(-small): `ratings.csv` with a header
//!   (`userId,movieId,rating,timestamp`, half-star ratings).

use super::ratings::{IdMap, Ratings};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Names of the official ml-100k train/test splits.
pub const OFFICIAL_SPLITS: [&str; 7] = ["u1", "u2", "u3", "u4", "u5", "ua", "ub"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingsFormat {
    /// Tab separated, four columns (ml-100k).
    Tab,
    /// `::` separated, four columns (ml-1m, ml-10m).
    DoubleColon,
    /// Comma separated with a header naming `userId`, `movieId`, `rating`.
    Csv,
}

impl RatingsFormat {
    pub fn name(self) -> &'static str {
        match self {
            RatingsFormat::Tab => "ml-100k",
            RatingsFormat::DoubleColon => "movielens-dat",
            RatingsFormat::Csv => "movielens-csv",
        }
    }
}

/// A ratings source found at a path: the file with all ratings and its format.
#[derive(Debug, Clone)]
pub struct RatingsSource {
    pub dir: Option<PathBuf>,
    pub file: PathBuf,
    pub format: RatingsFormat,
}

/// Finds the ratings file and its format from a directory or a file path.
pub fn detect(path: &Path) -> Result<RatingsSource> {
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    if path.is_dir() {
        for (name, format) in [
            ("u.data", RatingsFormat::Tab),
            ("ratings.dat", RatingsFormat::DoubleColon),
            ("ratings.csv", RatingsFormat::Csv),
        ] {
            let file = path.join(name);
            if file.is_file() {
                return Ok(RatingsSource {
                    dir: Some(path.to_path_buf()),
                    file,
                    format,
                });
            }
        }
        bail!(
            "{}: unknown ratings format: no u.data (ml-100k), ratings.dat (ml-1m/10m) or ratings.csv (ml-20m and later) in this directory",
            path.display()
        );
    }
    let format = format_of_file(path)?;
    Ok(RatingsSource {
        dir: path.parent().map(Path::to_path_buf),
        file: path.to_path_buf(),
        format,
    })
}

fn format_of_file(path: &Path) -> Result<RatingsFormat> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "data" | "base" | "test" | "tsv" => return Ok(RatingsFormat::Tab),
        "dat" => return Ok(RatingsFormat::DoubleColon),
        "csv" => return Ok(RatingsFormat::Csv),
        _ => {}
    }
    // Unknown extension: decide from the first line's separator.
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if first.contains("::") {
        Ok(RatingsFormat::DoubleColon)
    } else if first.contains('\t') {
        Ok(RatingsFormat::Tab)
    } else if first.contains(',') {
        Ok(RatingsFormat::Csv)
    } else {
        bail!(
            "{}: unknown ratings format for {name:?}: expected u.data/*.base/*.test (tab separated), ratings.dat (::) or ratings.csv",
            path.display()
        )
    }
}

/// Reads every rating in `path`, mapping raw ids through `users`/`items` (new ids are added).
/// The file is streamed line by line; only the parsed columns are kept.
pub fn read_ratings(
    path: &Path,
    format: RatingsFormat,
    users: &mut IdMap,
    items: &mut IdMap,
) -> Result<Ratings> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    // A size hint avoids repeated reallocation on the 25M-line files (~32 bytes a line).
    let approx_lines = file.metadata().map(|m| m.len() / 32).unwrap_or(0) as usize;
    let reader = BufReader::with_capacity(1 << 20, file);
    let ratings = match format {
        RatingsFormat::Tab => read_delimited(path, reader, b"\t", approx_lines, users, items)?,
        RatingsFormat::DoubleColon => {
            read_delimited(path, reader, b"::", approx_lines, users, items)?
        }
        RatingsFormat::Csv => read_csv(path, reader, approx_lines, users, items)?,
    };
    if ratings.is_empty() {
        bail!("{}: no ratings in file", path.display());
    }
    Ok(ratings)
}

fn read_delimited(
    path: &Path,
    mut reader: impl BufRead,
    separator: &[u8],
    capacity: usize,
    users: &mut IdMap,
    items: &mut IdMap,
) -> Result<Ratings> {
    let mut ratings = Ratings::with_capacity(capacity);
    let mut line = Vec::with_capacity(128);
    let mut line_number = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 {
            break;
        }
        line_number += 1;
        let text = trim_line_end(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut fields: [&[u8]; 4] = [&[]; 4];
        let count = split_into(text, separator, &mut fields);
        if count != 4 {
            bail!(
                "{}:{line_number}: expected 4 columns (user, item, rating, timestamp) separated by {:?}, found {count}",
                path.display(),
                String::from_utf8_lossy(separator)
            );
        }
        let at = Location { path, line_number };
        let user = parse_id(fields[0], "user id", &at)?;
        let item = parse_id(fields[1], "item id", &at)?;
        let value = parse_rating(fields[2], &at)?;
        ratings.push(
            users.index_or_insert(user),
            items.index_or_insert(item),
            value,
        );
    }
    Ok(ratings)
}

fn read_csv(
    path: &Path,
    reader: impl BufRead,
    capacity: usize,
    users: &mut IdMap,
    items: &mut IdMap,
) -> Result<Ratings> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = csv_reader
        .byte_headers()
        .with_context(|| format!("{}:1: cannot read the CSV header", path.display()))?
        .clone();
    let column = |names: &[&str]| {
        header.iter().position(|h| {
            let h = String::from_utf8_lossy(h).trim().to_ascii_lowercase();
            names.iter().any(|n| h == *n)
        })
    };
    let (Some(user_col), Some(item_col), Some(rating_col)) = (
        column(&["userid", "user_id", "user"]),
        column(&["movieid", "movie_id", "itemid", "item_id", "item"]),
        column(&["rating"]),
    ) else {
        bail!(
            "{}:1: CSV header must name userId, movieId and rating columns, found {:?}",
            path.display(),
            String::from_utf8_lossy(header.as_slice())
        );
    };
    let columns = header.len();
    let mut ratings = Ratings::with_capacity(capacity);
    let mut record = csv::ByteRecord::new();
    loop {
        let more = csv_reader.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow::anyhow!("{}:{line}: {e}", path.display())
        })?;
        if !more {
            break;
        }
        let line_number = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if record.len() != columns {
            bail!(
                "{}:{line_number}: expected {columns} columns as in the header, found {}",
                path.display(),
                record.len()
            );
        }
        let at = Location { path, line_number };
        let user = parse_id(&record[user_col], "user id", &at)?;
        let item = parse_id(&record[item_col], "item id", &at)?;
        let value = parse_rating(&record[rating_col], &at)?;
        ratings.push(
            users.index_or_insert(user),
            items.index_or_insert(item),
            value,
        );
    }
    Ok(ratings)
}

struct Location<'a> {
    path: &'a Path,
    line_number: usize,
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// Splits `text` on `separator` into `out`, returning the number of fields found
/// (which may exceed `out.len()`; extra fields are counted, not stored).
fn split_into<'a>(text: &'a [u8], separator: &[u8], out: &mut [&'a [u8]; 4]) -> usize {
    let mut count = 0;
    let mut start = 0;
    let mut i = 0;
    while i + separator.len() <= text.len() {
        if &text[i..i + separator.len()] == separator {
            if count < out.len() {
                out[count] = &text[start..i];
            }
            count += 1;
            i += separator.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if count < out.len() {
        out[count] = &text[start..];
    }
    count + 1
}

fn parse_id(field: &[u8], what: &str, at: &Location) -> Result<u64> {
    let text = field.trim_ascii();
    let mut value: u64 = 0;
    let valid = !text.is_empty()
        && text.iter().all(|&b| {
            if !b.is_ascii_digit() {
                return false;
            }
            value = value.wrapping_mul(10).wrapping_add((b - b'0') as u64);
            true
        })
        && text.len() <= 19;
    if !valid {
        bail!(
            "{}:{}: {what} {:?} is not a non-negative integer",
            at.path.display(),
            at.line_number,
            String::from_utf8_lossy(field)
        );
    }
    Ok(value)
}

fn parse_rating(field: &[u8], at: &Location) -> Result<f32> {
    let text = std::str::from_utf8(field).unwrap_or("").trim();
    let value: f32 = text.parse().map_err(|_| {
        anyhow::anyhow!(
            "{}:{}: rating {:?} is not a number",
            at.path.display(),
            at.line_number,
            String::from_utf8_lossy(field)
        )
    })?;
    if !value.is_finite() {
        bail!(
            "{}:{}: rating {text:?} is not finite",
            at.path.display(),
            at.line_number
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    fn load(path: &Path) -> Result<(Ratings, IdMap, IdMap)> {
        let source = detect(path)?;
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let r = read_ratings(&source.file, source.format, &mut users, &mut items)?;
        Ok((r, users, items))
    }

    #[test]
    fn reads_ml100k_tab_format() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "u.data",
            "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n",
        );
        let (r, users, items) = load(dir.path()).unwrap();
        assert_eq!(r.users, vec![0, 1, 0]);
        assert_eq!(r.items, vec![0, 1, 2]);
        assert_eq!(r.values, vec![3.0, 3.0, 1.0]);
        assert_eq!(users.raw_id(1), Some(186));
        assert_eq!(items.raw_id(2), Some(377));
    }

    #[test]
    fn reads_dat_format_with_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "ratings.dat",
            "1::1193::5::978300760\r\n1::661::3::978302109\r\n2::1193::4::978298413\r\n",
        );
        let (r, users, items) = load(&path).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(users.len(), 2);
        assert_eq!(items.len(), 2);
        assert_eq!(r.values, vec![5.0, 3.0, 4.0]);
    }

    #[test]
    fn reads_csv_with_header_and_half_stars() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n3,296,0.5,1147868828\n",
        );
        let (r, users, _) = load(dir.path()).unwrap();
        assert_eq!(r.values, vec![5.0, 3.5, 0.5]);
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("u.data", "1\t2\t3\t4\n1\t2\t3\n", ":2: expected 4 columns"),
            (
                "u.data",
                "1\t2\t3\t4\n1\t2\tfive\t4\n",
                ":2: rating \"five\" is not a number",
            ),
            (
                "u.data",
                "1\t2\tNaN\t4\n",
                ":1: rating \"NaN\" is not finite",
            ),
            (
                "u.data",
                "1\t2\tinf\t4\n",
                ":1: rating \"inf\" is not finite",
            ),
            ("u.data", "x\t2\t3\t4\n", ":1: user id \"x\" is not"),
            ("ratings.dat", "1::2::3\n", ":1: expected 4 columns"),
            (
                "ratings.csv",
                "userId,movieId,rating\n1,2\n",
                ":2: expected 3 columns",
            ),
            ("ratings.csv", "a,b,c\n1,2,3\n", ":1: CSV header must name"),
            ("u.data", "\n\n", "no ratings in file"),
        ];
        for (name, text, want) in cases {
            let path = write(dir.path(), name, text);
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
            assert!(err.contains(name), "{err:?} does not name the file");
        }
    }

    #[test]
    fn unknown_directory_and_missing_path_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", detect(dir.path()).unwrap_err());
        assert!(err.contains("unknown ratings format"), "{err}");
        let err = format!("{:#}", detect(&dir.path().join("nope")).unwrap_err());
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn split_counts_extra_fields() {
        let mut out: [&[u8]; 4] = [&[]; 4];
        assert_eq!(split_into(b"a::b::c::d::e", b"::", &mut out), 5);
        assert_eq!(split_into(b"a\tb", b"\t", &mut out), 2);
        assert_eq!(out[1], b"b");
    }
}
