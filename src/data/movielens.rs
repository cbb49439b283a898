//! MovieLens rating files in their three published layouts, read streaming.
//!
//! * ml-100k: `u.data` and the official splits `u1.base/u1.test` .. `u5`, `ua`, `ub`
//!   (`user \t item \t rating \t timestamp`).
//! * ml-1m, ml-10m: `ratings.dat` (`user::item::rating::timestamp`).
//! * ml-20m, ml-25m, ml-32m, ml-latest(-small): `ratings.csv` with a header
//!   (`userId,movieId,rating,timestamp`, half-star ratings).

use super::options::RatingRange;
use super::ratings::{IdMap, Ratings};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::Range;
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

    /// The published scale: whole stars in ml-100k; `ratings.dat` and `ratings.csv` also
    /// carry ml-10m and later, which use half stars.
    pub fn scale(self) -> RatingRange {
        match self {
            RatingsFormat::Tab => RatingRange::STARS,
            RatingsFormat::DoubleColon | RatingsFormat::Csv => RatingRange::HALF_STARS,
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

/// Ratings read from one file, with the line of each rating so that later checks (repeated
/// pairs) can name it.
#[derive(Debug, Clone)]
pub struct RatingsFile {
    pub path: PathBuf,
    pub ratings: Ratings,
    pub lines: LineIndex,
}

/// Line numbers of a file's ratings, stored only where they stop running consecutively
/// (after the header, around blank lines): a few entries instead of one per rating.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    /// (position, line) where the consecutive run restarts.
    anchors: Vec<(usize, usize)>,
    len: usize,
}

impl LineIndex {
    /// Records the line of the next rating.
    pub fn push(&mut self, line: usize) {
        let continues = self
            .anchors
            .last()
            .is_some_and(|&(position, first)| first + (self.len - position) == line);
        if !continues {
            self.anchors.push((self.len, line));
        }
        self.len += 1;
    }

    /// The line of the rating at `position` (0 when there is none).
    pub fn line(&self, position: usize) -> usize {
        let run = self.anchors.partition_point(|&(p, _)| p <= position);
        match run.checked_sub(1).map(|k| self.anchors[k]) {
            Some((start, line)) if position < self.len => line + (position - start),
            _ => 0,
        }
    }
}

/// The rating scale a file is checked against.
#[derive(Debug, Clone, Copy)]
struct Scale {
    range: RatingRange,
    /// Set by the user (`--rating-range`) rather than the format.
    custom: bool,
}

impl Scale {
    fn new(format: RatingsFormat, custom: Option<RatingRange>) -> Self {
        match custom {
            Some(range) => Scale {
                range,
                custom: true,
            },
            None => Scale {
                range: format.scale(),
                custom: false,
            },
        }
    }

    fn describe(&self) -> String {
        let (min, max) = (self.range.min(), self.range.max());
        if self.custom {
            format!("--rating-range {min},{max}")
        } else {
            format!(
                "the MovieLens scale {min}..{max} (set --rating-range MIN,MAX for other scales)"
            )
        }
    }
}

/// Reads every rating in `path`, mapping raw ids through `users`/`items` (new ids are added).
/// Ratings outside `range` (default: the format's MovieLens scale) are an error.
/// The file is streamed line by line; only the parsed columns are kept.
pub fn read_ratings(
    path: &Path,
    format: RatingsFormat,
    range: Option<RatingRange>,
    users: &mut IdMap,
    items: &mut IdMap,
) -> Result<RatingsFile> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    // A size hint avoids repeated reallocation on the 25M-line files (~32 bytes a line).
    let approx_lines = file.metadata().map(|m| m.len() / 32).unwrap_or(0) as usize;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut sink = Sink {
        scale: Scale::new(format, range),
        users,
        items,
        file: RatingsFile {
            path: path.to_path_buf(),
            ratings: Ratings::with_capacity(approx_lines),
            lines: LineIndex::default(),
        },
    };
    match format {
        RatingsFormat::Tab => read_delimited(reader, b"\t", &mut sink)?,
        RatingsFormat::DoubleColon => read_delimited(reader, b"::", &mut sink)?,
        RatingsFormat::Csv => read_csv(reader, &mut sink)?,
    };
    if sink.file.ratings.is_empty() {
        bail!("{}: no ratings in file", path.display());
    }
    Ok(sink.file)
}

/// Where parsed fields go: checked, mapped to dense ids, stored with their line.
struct Sink<'a> {
    scale: Scale,
    users: &'a mut IdMap,
    items: &'a mut IdMap,
    file: RatingsFile,
}

impl Sink<'_> {
    fn path(&self) -> &Path {
        &self.file.path
    }

    fn push(&mut self, line_number: usize, user: &[u8], item: &[u8], rating: &[u8]) -> Result<()> {
        let at = Location {
            path: &self.file.path,
            line_number,
        };
        let user = parse_id(user, "user id", &at)?;
        let item = parse_id(item, "item id", &at)?;
        let value = parse_rating(rating, &at)?;
        if !self.scale.range.contains(value) {
            bail!(
                "{}:{line_number}: rating {} is outside {}",
                self.path().display(),
                String::from_utf8_lossy(rating.trim_ascii()),
                self.scale.describe()
            );
        }
        self.file.ratings.push(
            self.users.index_or_insert(user),
            self.items.index_or_insert(item),
            value,
        );
        self.file.lines.push(line_number);
        Ok(())
    }
}

/// Calls `on_line` with the number and text of every non-blank line. The text has lost its
/// line end, trailing whitespace and, on line 1, a UTF-8 byte order mark (which editors on
/// Windows write).
fn for_each_line(
    mut reader: impl BufRead,
    path: &Path,
    mut on_line: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut line = Vec::with_capacity(128);
    let mut line_number = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}: read error", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        line_number += 1;
        let mut text = line.trim_ascii_end();
        if line_number == 1 {
            text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
        }
        if !text.is_empty() {
            on_line(line_number, text)?;
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn read_delimited(reader: impl BufRead, separator: &[u8], sink: &mut Sink) -> Result<()> {
    let path = sink.file.path.clone();
    for_each_line(reader, &path, |line_number, text| {
        let mut fields: [&[u8]; 4] = [&[]; 4];
        let count = split_into(text, separator, &mut fields);
        if count != 4 {
            bail!(
                "{}:{line_number}: expected 4 columns (user, item, rating, timestamp) separated by {:?}, found {count}",
                path.display(),
                String::from_utf8_lossy(separator)
            );
        }
        sink.push(line_number, fields[0], fields[1], fields[2])
    })
}

/// Reads a CSV file line by line: the first non-blank line is the header. Fields may be
/// quoted but may not span lines, which keeps line numbers exact (the csv crate reports the
/// line where skipped blank lines began, not the record's own).
fn read_csv(reader: impl BufRead, sink: &mut Sink) -> Result<()> {
    let path = sink.file.path.clone();
    let mut columns: Option<CsvColumns> = None;
    let mut fields = Vec::new();
    for_each_line(reader, &path, |line_number, text| {
        split_csv(text, &mut fields);
        let Some(columns) = &columns else {
            columns = Some(CsvColumns::from_header(text, &fields, &path, line_number)?);
            return Ok(());
        };
        if fields.len() != columns.count {
            bail!(
                "{}:{line_number}: expected {} columns as in the header, found {}",
                path.display(),
                columns.count,
                fields.len()
            );
        }
        let field = |k: usize| unquote(&text[fields[k].clone()]);
        sink.push(
            line_number,
            field(columns.user),
            field(columns.item),
            field(columns.rating),
        )
    })
}

/// Where a CSV header puts the user, item and rating columns, and how many it names.
struct CsvColumns {
    user: usize,
    item: usize,
    rating: usize,
    count: usize,
}

impl CsvColumns {
    fn from_header(
        text: &[u8],
        fields: &[Range<usize>],
        path: &Path,
        line_number: usize,
    ) -> Result<Self> {
        let column = |names: &[&str]| {
            fields.iter().position(|range| {
                let name = String::from_utf8_lossy(unquote(&text[range.clone()]));
                names.contains(&name.to_ascii_lowercase().as_str())
            })
        };
        match (
            column(&["userid", "user_id", "user"]),
            column(&["movieid", "movie_id", "itemid", "item_id", "item"]),
            column(&["rating"]),
        ) {
            (Some(user), Some(item), Some(rating)) => Ok(CsvColumns {
                user,
                item,
                rating,
                count: fields.len(),
            }),
            _ => bail!(
                "{}:{line_number}: CSV header must name userId, movieId and rating columns, found {:?}",
                path.display(),
                String::from_utf8_lossy(text)
            ),
        }
    }
}

/// The byte ranges of the comma-separated fields of `text`; commas inside double quotes do
/// not separate.
fn split_csv(text: &[u8], fields: &mut Vec<Range<usize>>) {
    fields.clear();
    let mut start = 0;
    let mut quoted = false;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                fields.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(start..text.len());
}

/// A field without surrounding whitespace and one pair of enclosing double quotes.
fn unquote(field: &[u8]) -> &[u8] {
    let field = field.trim_ascii();
    field
        .strip_prefix(b"\"")
        .and_then(|f| f.strip_suffix(b"\""))
        .unwrap_or(field)
}

struct Location<'a> {
    path: &'a Path,
    line_number: usize,
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

/// Parses a raw id over the whole u64 range.
fn parse_id(field: &[u8], what: &str, at: &Location) -> Result<u64> {
    let text = field.trim_ascii();
    let digits = text.iter().try_fold(0u64, |value, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(digit))
    });
    match digits {
        Some(value) if !text.is_empty() => Ok(value),
        _ => {
            let problem = if !text.is_empty() && text.iter().all(u8::is_ascii_digit) {
                "is larger than the largest id 18446744073709551615"
            } else {
                "is not a non-negative integer"
            };
            bail!(
                "{}:{}: {what} {:?} {problem}",
                at.path.display(),
                at.line_number,
                String::from_utf8_lossy(field)
            )
        }
    }
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
        load_in(path, None)
    }

    fn load_in(path: &Path, range: Option<RatingRange>) -> Result<(Ratings, IdMap, IdMap)> {
        let source = detect(path)?;
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let file = read_ratings(&source.file, source.format, range, &mut users, &mut items)?;
        Ok((file.ratings, users, items))
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

    #[test]
    fn ratings_outside_the_format_scale_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("u.data", "1\t2\t3\t4\n1\t3\t99\t4\n", ":2: rating 99 is outside the MovieLens scale 1..5 (set --rating-range MIN,MAX for other scales)"),
            ("u.data", "1\t2\t-4\t4\n", ":1: rating -4 is outside the MovieLens scale 1..5"),
            ("u.data", "1\t2\t0.5\t4\n", ":1: rating 0.5 is outside the MovieLens scale 1..5"),
            ("ratings.dat", "1::2::0::4\n", ":1: rating 0 is outside the MovieLens scale 0.5..5"),
            ("ratings.csv", "userId,movieId,rating\n1,2,0.5\n1,3,5.5\n", ":3: rating 5.5 is outside the MovieLens scale 0.5..5"),
        ];
        for (name, text, want) in cases {
            let path = write(dir.path(), name, text);
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
            assert!(err.contains(name), "{err:?} does not name the file");
        }
    }

    #[test]
    fn a_custom_range_replaces_the_format_scale() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "u.data", "1\t2\t10\t4\n1\t3\t0\t4\n");
        let range: RatingRange = "0,10".parse().unwrap();
        let (r, _, _) = load_in(&path, Some(range)).unwrap();
        assert_eq!(r.values, vec![10.0, 0.0]);
        let range: RatingRange = "1,9.5".parse().unwrap();
        let err = format!("{:#}", load_in(&path, Some(range)).unwrap_err());
        assert!(
            err.ends_with("u.data:1: rating 10 is outside --rating-range 1,9.5"),
            "{err}"
        );
    }

    #[test]
    fn ids_span_the_whole_u64_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "u.data",
            "18446744073709551615\t0\t3\t4\n00000000000000000000042\t18446744073709551614\t3\t4\n",
        );
        let (_, users, items) = load(&path).unwrap();
        assert_eq!(users.raw_id(0), Some(u64::MAX));
        assert_eq!(users.raw_id(1), Some(42));
        assert_eq!(items.raw_id(1), Some(u64::MAX - 1));
        for (text, want) in [
            (
                "18446744073709551616\t1\t3\t4\n",
                "user id \"18446744073709551616\" is larger than the largest id",
            ),
            (
                "1\t-3\t3\t4\n",
                ":1: item id \"-3\" is not a non-negative integer",
            ),
            (
                "1\t2\t3\t4\n+1\t2\t3\t4\n",
                ":2: user id \"+1\" is not a non-negative integer",
            ),
        ] {
            let path = write(dir.path(), "u.data", text);
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn tab_files_accept_a_byte_order_mark_and_trailing_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "u.data",
            "\u{feff}1\t2\t3\t4 \t\r\n\r\n  \n2\t2\t4\t5\n",
        );
        let (r, users, _) = load(&path).unwrap();
        assert_eq!(r.values, vec![3.0, 4.0]);
        assert_eq!(users.raw_id(0), Some(1));
    }

    #[test]
    fn line_index_names_lines_around_headers_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "ratings.csv",
            "userId,movieId,rating\n1,1,1\n1,2,2\n\n\n2,1,3\n2,2,4\n",
        );
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let file = read_ratings(&path, RatingsFormat::Csv, None, &mut users, &mut items).unwrap();
        let lines: Vec<usize> = (0..5).map(|p| file.lines.line(p)).collect();
        assert_eq!(lines, vec![2, 3, 6, 7, 0]);
        assert_eq!(file.lines.anchors.len(), 2);
    }

    #[test]
    fn csv_fields_may_be_quoted_and_errors_count_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "ratings.csv",
            "\u{feff}\"userId\",\"movieId\",\"rating\",\"tag\"\r\n\"1\",2,\" 4.5\",\"a, b\"\r\n",
        );
        let (r, users, items) = load(&path).unwrap();
        assert_eq!(r.values, vec![4.5]);
        assert_eq!((users.raw_id(0), items.raw_id(0)), (Some(1), Some(2)));
        let path = write(
            dir.path(),
            "ratings.csv",
            "userId,movieId,rating\n\n1,2,3\n\n\n1,3,x\n",
        );
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.contains("ratings.csv:6: rating \"x\" is not a number"),
            "{err}"
        );
    }
}
