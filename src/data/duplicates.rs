//! Repeated (user, item) pairs within and across the files of one data set (an official
//! split's training and test files count as one data set: a pair in both leaks the answer).
//!
//! Pairs are found by sorting one packed integer per rating (see `Packing`): 8 bytes a rating
//! while loading, and about 2 s for ml-25m's 25M ratings, whatever the order of the file.

use super::movielens::RatingsFile;
use super::options::DuplicatePolicy;
use super::ratings::IdMap;
use anyhow::{bail, Result};
use std::path::Path;

/// Applies `policy` to the pairs rated more than once in `files` (taken in order, as one
/// sequence). Returns how many ratings were removed.
pub fn resolve(
    files: &mut [RatingsFile],
    policy: DuplicatePolicy,
    users: &IdMap,
    items: &IdMap,
) -> Result<usize> {
    let mut plan = Plan::default();
    let mut first_repeat: Option<Repeat> = None;
    for_each_group(files, users.len(), items.len(), |group| {
        if policy == DuplicatePolicy::Error {
            let repeat = Repeat::of(group);
            if first_repeat.is_none_or(|r| repeat.again < r.again) {
                first_repeat = Some(repeat);
            }
        } else {
            plan.add(group, policy, files);
        }
    });
    if let Some(repeat) = first_repeat {
        bail!("{}", repeat.message(files, users, items));
    }
    Ok(plan.apply(files))
}

/// A pair's positions in file order, counted across all files.
struct Group<'a> {
    user: u32,
    item: u32,
    positions: &'a [usize],
}

/// Calls `on_group` for every pair rated more than once.
fn for_each_group(files: &[RatingsFile], users: usize, items: usize, on_group: impl FnMut(&Group)) {
    let total = files.iter().map(|f| f.ratings.len()).sum();
    let packing = Packing {
        item_bits: bits_for(items),
        position_bits: bits_for(total),
    };
    if bits_for(users) + packing.item_bits + packing.position_bits <= 64 {
        groups_in::<u64>(files, total, &packing, on_group);
    } else {
        groups_in::<u128>(files, total, &packing, on_group);
    }
}

/// Bits needed to store every value in `0..n`.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

fn groups_in<E: Entry>(
    files: &[RatingsFile],
    total: usize,
    packing: &Packing,
    mut on_group: impl FnMut(&Group),
) {
    let mut entries: Vec<E> = Vec::with_capacity(total);
    let pairs = files
        .iter()
        .flat_map(|f| f.ratings.users.iter().zip(&f.ratings.items));
    entries.extend(
        pairs
            .enumerate()
            .map(|(position, (&user, &item))| E::narrow(packing.pack(user, item, position))),
    );
    entries.sort_unstable();
    let mut positions = Vec::new();
    let same_pair = |a: &E, b: &E| packing.pair(a.widen()) == packing.pair(b.widen());
    for run in entries.chunk_by(same_pair).filter(|run| run.len() > 1) {
        positions.clear();
        positions.extend(run.iter().map(|e| packing.position(e.widen())));
        let (user, item) = packing.user_item(run[0].widen());
        on_group(&Group {
            user,
            item,
            positions: &positions,
        });
    }
}

/// (user, item, position) packed into one integer, highest bits first, so that sorting
/// groups each pair and orders a group by position. A u64 holds ml-25m (18 + 16 + 25 bits)
/// and sorts in about 2 s; a u128 takes over for larger data.
struct Packing {
    item_bits: u32,
    position_bits: u32,
}

impl Packing {
    fn pack(&self, user: u32, item: u32, position: usize) -> u128 {
        (u128::from(user) << (self.item_bits + self.position_bits))
            | (u128::from(item) << self.position_bits)
            | position as u128
    }

    fn pair(&self, entry: u128) -> u128 {
        entry >> self.position_bits
    }

    fn user_item(&self, entry: u128) -> (u32, u32) {
        let pair = self.pair(entry);
        let item_mask = (1u128 << self.item_bits) - 1;
        ((pair >> self.item_bits) as u32, (pair & item_mask) as u32)
    }

    fn position(&self, entry: u128) -> usize {
        (entry & ((1u128 << self.position_bits) - 1)) as usize
    }
}

/// The integer a packed entry is stored in: the smallest that fits sorts fastest.
trait Entry: Copy + Ord {
    fn narrow(wide: u128) -> Self;
    fn widen(self) -> u128;
}

impl Entry for u64 {
    fn narrow(wide: u128) -> Self {
        wide as u64
    }

    fn widen(self) -> u128 {
        u128::from(self)
    }
}

impl Entry for u128 {
    fn narrow(wide: u128) -> Self {
        wide
    }

    fn widen(self) -> u128 {
        self
    }
}

/// The first repetition of a pair: where it was first rated and where again.
#[derive(Debug, Clone, Copy)]
struct Repeat {
    user: u32,
    item: u32,
    first: usize,
    again: usize,
}

impl Repeat {
    fn of(group: &Group) -> Self {
        Repeat {
            user: group.user,
            item: group.item,
            first: group.positions[0],
            again: group.positions[1],
        }
    }

    fn message(&self, files: &[RatingsFile], users: &IdMap, items: &IdMap) -> String {
        let (again_file, again) = locate(files, self.again);
        let (first_file, first) = locate(files, self.first);
        let (again_line, first_line) = (again_file.lines.line(again), first_file.lines.line(first));
        let first_at = if first_file.path == again_file.path {
            format!("line {first_line}")
        } else {
            format!(
                "{}:{first_line}",
                name_beside(&first_file.path, &again_file.path)
            )
        };
        format!(
            "{}:{again_line}: user {}, item {} rated again (first at {first_at}); choose --duplicates keep-first|keep-last|mean",
            again_file.path.display(),
            raw(users, self.user),
            raw(items, self.item),
        )
    }
}

fn raw(ids: &IdMap, index: u32) -> String {
    ids.raw_id(index)
        .map_or_else(|| format!("#{index}"), |id| id.to_string())
}

/// The file holding global `position`, and the position within that file.
fn locate(files: &[RatingsFile], mut position: usize) -> (&RatingsFile, usize) {
    for file in files {
        if position < file.ratings.len() {
            return (file, position);
        }
        position -= file.ratings.len();
    }
    unreachable!("positions come from enumerating these same files")
}

/// Just the file name when both files share a folder (u1.base beside u1.test).
fn name_beside(path: &Path, other: &Path) -> String {
    match path.file_name() {
        Some(name) if path.parent() == other.parent() => name.to_string_lossy().into_owned(),
        _ => path.display().to_string(),
    }
}

/// Ratings to drop and values to replace, by global position.
#[derive(Default)]
struct Plan {
    dropped: Vec<usize>,
    replaced: Vec<(usize, f32)>,
}

impl Plan {
    fn add(&mut self, group: &Group, policy: DuplicatePolicy, files: &[RatingsFile]) {
        let positions = group.positions;
        let last = positions.len() - 1;
        match policy {
            DuplicatePolicy::Error | DuplicatePolicy::KeepFirst => {
                self.dropped.extend_from_slice(&positions[1..]);
            }
            DuplicatePolicy::KeepLast => self.dropped.extend_from_slice(&positions[..last]),
            DuplicatePolicy::Mean => {
                let sum: f64 = positions.iter().map(|&p| value_at(files, p)).sum();
                self.replaced
                    .push((positions[0], (sum / positions.len() as f64) as f32));
                self.dropped.extend_from_slice(&positions[1..]);
            }
        }
    }

    fn apply(mut self, files: &mut [RatingsFile]) -> usize {
        self.dropped.sort_unstable();
        let mut offset = 0;
        for file in files.iter_mut() {
            let end = offset + file.ratings.len();
            for &(p, value) in &self.replaced {
                if (offset..end).contains(&p) {
                    file.ratings.values[p - offset] = value;
                }
            }
            let from = self.dropped.partition_point(|&p| p < offset);
            let to = self.dropped.partition_point(|&p| p < end);
            let local: Vec<usize> = self.dropped[from..to].iter().map(|p| p - offset).collect();
            file.ratings.remove_sorted(&local);
            offset = end;
        }
        self.dropped.len()
    }
}

fn value_at(files: &[RatingsFile], position: usize) -> f64 {
    let (file, local) = locate(files, position);
    f64::from(file.ratings.values[local])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::movielens::LineIndex;
    use crate::data::Ratings;
    use std::path::PathBuf;

    /// (raw user, raw item, value)
    type Row = (u64, u64, f32);

    /// A file of (raw user, raw item, value) ratings on lines 2, 3, ... (after a header).
    fn file(name: &str, rows: &[Row], users: &mut IdMap, items: &mut IdMap) -> RatingsFile {
        let mut ratings = Ratings::default();
        let mut lines = LineIndex::default();
        for (k, &(u, i, v)) in rows.iter().enumerate() {
            ratings.push(users.index_or_insert(u), items.index_or_insert(i), v);
            lines.push(k + 2);
        }
        RatingsFile {
            path: PathBuf::from("/data").join(name),
            ratings,
            lines,
        }
    }

    fn run(policy: DuplicatePolicy, parts: &[(&str, &[Row])]) -> Result<(Vec<Vec<Row>>, usize)> {
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let mut files: Vec<RatingsFile> = parts
            .iter()
            .map(|(name, rows)| file(name, rows, &mut users, &mut items))
            .collect();
        let removed = resolve(&mut files, policy, &users, &items)?;
        let rows = files
            .iter()
            .map(|f| {
                let r = &f.ratings;
                (0..r.len())
                    .map(|k| {
                        let u = users.raw_id(r.users[k]).unwrap();
                        (u, items.raw_id(r.items[k]).unwrap(), r.values[k])
                    })
                    .collect()
            })
            .collect();
        Ok((rows, removed))
    }

    const ROWS: &[Row] = &[
        (1, 10, 1.0),
        (5, 7, 2.0),
        (2, 10, 3.0),
        (5, 7, 4.0),
        (1, 11, 5.0),
        (5, 7, 3.0),
    ];

    #[test]
    fn error_names_both_lines_of_the_first_repeat() {
        let rows = [
            (9, 9, 1.0),
            (1, 2, 1.0),
            (1, 3, 1.0),
            (1, 2, 2.0),
            (9, 9, 1.0),
        ];
        let err = run(DuplicatePolicy::Error, &[("ratings.csv", &rows)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/data/ratings.csv:5: user 1, item 2 rated again (first at line 3); choose --duplicates keep-first|keep-last|mean"
        );
    }

    #[test]
    fn error_across_files_names_the_other_file() {
        let base: &[Row] = &[(1, 2, 1.0), (3, 4, 1.0)];
        let test: &[Row] = &[(5, 6, 1.0), (3, 4, 2.0)];
        let err = run(
            DuplicatePolicy::Error,
            &[("u1.base", base), ("u1.test", test)],
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "/data/u1.test:3: user 3, item 4 rated again (first at u1.base:3); choose --duplicates keep-first|keep-last|mean"
        );
    }

    #[test]
    fn keep_first_keep_last_and_mean_leave_one_rating_per_pair() {
        let (rows, removed) = run(DuplicatePolicy::KeepFirst, &[("r.csv", ROWS)]).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(
            rows[0],
            vec![(1, 10, 1.0), (5, 7, 2.0), (2, 10, 3.0), (1, 11, 5.0)]
        );
        let (rows, _) = run(DuplicatePolicy::KeepLast, &[("r.csv", ROWS)]).unwrap();
        assert_eq!(
            rows[0],
            vec![(1, 10, 1.0), (2, 10, 3.0), (1, 11, 5.0), (5, 7, 3.0)]
        );
        let (rows, _) = run(DuplicatePolicy::Mean, &[("r.csv", ROWS)]).unwrap();
        assert_eq!(
            rows[0],
            vec![(1, 10, 1.0), (5, 7, 3.0), (2, 10, 3.0), (1, 11, 5.0)]
        );
    }

    #[test]
    fn policies_across_files_keep_each_rating_in_its_own_file() {
        let base: &[Row] = &[(1, 2, 1.0), (3, 4, 2.0)];
        let test: &[Row] = &[(3, 4, 4.0), (5, 6, 5.0)];
        let parts = [("u1.base", base), ("u1.test", test)];
        let (rows, _) = run(DuplicatePolicy::KeepFirst, &parts).unwrap();
        assert_eq!(rows, vec![base.to_vec(), vec![(5, 6, 5.0)]]);
        let (rows, _) = run(DuplicatePolicy::KeepLast, &parts).unwrap();
        assert_eq!(rows, vec![vec![(1, 2, 1.0)], test.to_vec()]);
        let (rows, _) = run(DuplicatePolicy::Mean, &parts).unwrap();
        assert_eq!(
            rows,
            vec![vec![(1, 2, 1.0), (3, 4, 3.0)], vec![(5, 6, 5.0)]]
        );
    }

    #[test]
    fn distinct_pairs_pass_unchanged() {
        let rows = [(1, 2, 1.0), (2, 1, 2.0), (1, 1, 3.0)];
        for policy in DuplicatePolicy::ALL {
            let (out, removed) = run(policy, &[("r.csv", &rows)]).unwrap();
            assert_eq!((out[0].as_slice(), removed), (rows.as_slice(), 0));
        }
    }

    #[test]
    fn both_entry_widths_find_the_same_groups() {
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let files = [file("r.csv", ROWS, &mut users, &mut items)];
        let packing = Packing {
            item_bits: bits_for(items.len()),
            position_bits: bits_for(ROWS.len()),
        };
        let collect = |narrow: bool| {
            let mut groups = Vec::new();
            let on_group = |g: &Group| groups.push((g.user, g.item, g.positions.to_vec()));
            if narrow {
                groups_in::<u64>(&files, ROWS.len(), &packing, on_group);
            } else {
                groups_in::<u128>(&files, ROWS.len(), &packing, on_group);
            }
            groups
        };
        assert_eq!(collect(true), vec![(1, 1, vec![1, 3, 5])]);
        assert_eq!(collect(false), collect(true));
    }

    #[test]
    fn bits_for_counts_the_bits_of_the_largest_value() {
        let counts: Vec<u32> = [0, 1, 2, 3, 4, 5, 256, 257].map(bits_for).to_vec();
        assert_eq!(counts, vec![0, 0, 1, 2, 2, 3, 8, 9]);
    }
}
