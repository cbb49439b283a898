//! Item titles and genres that MovieLens folders ship beside their ratings, so that a
//! recommendation can name its films:
//!
//! * ml-100k: `u.item` (`id|title|release date|video release|url|19 genre flags`, latin-1)
//!   with the genre names in `u.genre` (`name|index`).
//! * ml-1m, ml-10m: `movies.dat` (`id::title::genre|genre`).
//! * ml-20m and later, ml-latest(-small): `movies.csv` (`movieId,title,genres`, CSV quoting,
//!   `|`-separated genres).
//!
//! Files in UTF-8 are read as such; any other file as latin-1, MovieLens's older encoding.

use super::movielens::{self, RatingsFormat};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a data set says about one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemInfo {
    pub title: String,
    /// Empty when the data set lists none for the item (or has no genres at all).
    pub genres: Vec<String>,
}

/// Reads one titles format (the folder is for files beside it, such as `u.genre`).
type Parser = fn(&str, &Path) -> Result<HashMap<u64, ItemInfo>>;

/// The titles of a data set's items, by raw item id, and the file they came from.
#[derive(Debug, Clone)]
pub struct Titles {
    pub file: PathBuf,
    pub items: HashMap<u64, ItemInfo>,
}

/// The item titles beside the ratings at `data` (a MovieLens folder or ratings file);
/// `Ok(None)` when there is no titles file there. A titles file that cannot be read or
/// parsed is an error naming its line.
pub fn read_titles(data: &Path) -> Result<Option<Titles>> {
    let source = movielens::detect(data)?;
    let Some(dir) = source.dir.filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let (name, parse): (&str, Parser) = match source.format {
        RatingsFormat::Tab => ("u.item", parse_u_item),
        RatingsFormat::DoubleColon => ("movies.dat", parse_movies_dat),
        RatingsFormat::Csv => ("movies.csv", parse_movies_csv),
    };
    let file = dir.join(name);
    if !file.is_file() {
        return Ok(None);
    }
    let text = read_text(&file)?;
    let items = parse(&text, &dir)
        .with_context(|| format!("{}: not a MovieLens {name} file", file.display()))?;
    Ok(Some(Titles { file, items }))
}

/// The file's text: UTF-8 when it is valid UTF-8, else latin-1 (every byte one character).
fn read_text(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => error.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

fn parse_id(field: &str, line: usize) -> Result<u64> {
    field
        .trim()
        .parse()
        .with_context(|| format!("line {line}: item id {field:?} is not a whole number"))
}

/// ml-100k's `u.item`, with genre names from `u.genre` beside it (no genres without it).
fn parse_u_item(text: &str, dir: &Path) -> Result<HashMap<u64, ItemInfo>> {
    let genre_names = match dir.join("u.genre") {
        file if file.is_file() => parse_u_genre(&read_text(&file)?)
            .with_context(|| format!("{}: not a MovieLens u.genre file", file.display()))?,
        _ => Vec::new(),
    };
    let mut items = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() < 2 {
            bail!("line {}: expected id|title|...", number + 1);
        }
        let flags = fields.get(5..).unwrap_or_default();
        let genres = flags
            .iter()
            .zip(&genre_names)
            .filter(|(flag, _)| flag.trim() == "1")
            .map(|(_, name)| name.clone())
            .collect();
        let info = ItemInfo {
            title: fields[1].trim().to_string(),
            genres,
        };
        items.insert(parse_id(fields[0], number + 1)?, info);
    }
    Ok(items)
}

/// `name|index` lines; the names in index order.
fn parse_u_genre(text: &str) -> Result<Vec<String>> {
    let mut genres: Vec<(usize, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let Some((name, index)) = line.trim().rsplit_once('|') else {
            continue;
        };
        let index = index
            .parse()
            .with_context(|| format!("line {}: genre index {index:?}", number + 1))?;
        genres.push((index, name.to_string()));
    }
    genres.sort();
    Ok(genres.into_iter().map(|(_, name)| name).collect())
}

/// A `|`-separated genre list; MovieLens writes `(no genres listed)` for none.
fn split_genres(field: &str) -> Vec<String> {
    field
        .split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
        .map(str::to_string)
        .collect()
}

/// ml-1m and ml-10m's `movies.dat`: `id::title::genres`.
fn parse_movies_dat(text: &str, _dir: &Path) -> Result<HashMap<u64, ItemInfo>> {
    let mut items = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split("::").collect();
        let [id, title, rest @ ..] = fields.as_slice() else {
            bail!("line {}: expected id::title::genres", number + 1);
        };
        let info = ItemInfo {
            title: title.trim().to_string(),
            genres: rest.first().map(|g| split_genres(g)).unwrap_or_default(),
        };
        items.insert(parse_id(id, number + 1)?, info);
    }
    Ok(items)
}

/// `movies.csv`: a header naming `movieId` and `title` (and `genres`), CSV quoting.
fn parse_movies_csv(text: &str, _dir: &Path) -> Result<HashMap<u64, ItemInfo>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().context("line 1: no header")?.clone();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(id), Some(title)) = (column("movieId"), column("title")) else {
        bail!("line 1: the header names no movieId and title columns");
    };
    let genres = column("genres");
    let mut items = HashMap::new();
    for record in reader.records() {
        let record = record.context("malformed CSV")?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let (Some(raw_id), Some(name)) = (record.get(id), record.get(title)) else {
            bail!("line {line}: expected movieId,title,genres");
        };
        let info = ItemInfo {
            title: name.trim().to_string(),
            genres: genres
                .and_then(|g| record.get(g))
                .map(split_genres)
                .unwrap_or_default(),
        };
        items.insert(parse_id(raw_id, line)?, info);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_u_item_with_genres_from_u_genre() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.data"), "1\t2\t3\t4\n").unwrap();
        std::fs::write(
            dir.path().join("u.genre"),
            "unknown|0\nAction|1\nComedy|2\n\n",
        )
        .unwrap();
        let mut item = b"2|Se\xf1orita (1999)|01-Jan-1999||http://x|0|1|1\n".to_vec();
        item.extend_from_slice(b"3|Plain (1990)|||u|0|0|0\n");
        std::fs::write(dir.path().join("u.item"), item).unwrap();
        let titles = read_titles(dir.path()).unwrap().unwrap();
        assert_eq!(titles.items[&2].title, "Señorita (1999)");
        assert_eq!(titles.items[&2].genres, ["Action", "Comedy"]);
        assert!(titles.items[&3].genres.is_empty());
        assert_eq!(titles.file, dir.path().join("u.item"));
    }

    #[test]
    fn movies_csv_with_quoted_titles_and_no_titles_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ratings.csv"),
            "userId,movieId,rating,timestamp\n1,10,4.0,1\n",
        )
        .unwrap();
        assert!(read_titles(dir.path()).unwrap().is_none());
        std::fs::write(
            dir.path().join("movies.csv"),
            "movieId,title,genres\n10,\"American President, The (1995)\",Comedy|Drama|Romance\n11,Untitled (2018),(no genres listed)\n",
        )
        .unwrap();
        let titles = read_titles(dir.path()).unwrap().unwrap();
        assert_eq!(titles.items[&10].title, "American President, The (1995)");
        assert_eq!(titles.items[&10].genres, ["Comedy", "Drama", "Romance"]);
        assert!(titles.items[&11].genres.is_empty());
        std::fs::write(dir.path().join("movies.csv"), "movieId,title\nten,X\n").unwrap();
        let error = format!("{:#}", read_titles(dir.path()).unwrap_err());
        assert!(
            error.contains("movies.csv") && error.contains("line 2"),
            "{error}"
        );
    }

    #[test]
    fn movies_dat() {
        let titles =
            parse_movies_dat("1::Toy Story (1995)::Animation|Children's\n", Path::new("")).unwrap();
        assert_eq!(titles[&1].genres, ["Animation", "Children's"]);
    }
}
