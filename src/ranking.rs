//! Ranking metrics of a recommender: precision@K, recall@K, nDCG@K and hit@K, defined
//! exactly as docs/commands.md (`regulab eval`) states them:
//!
//! * relevant items: a user's evaluated ratings at or above the relevance threshold; users
//!   without one are left out (and counted);
//! * candidates: every item row of the model minus the items the user rated in the model's
//!   training ratings;
//! * ranking: by score, descending; ties go to the smaller raw item id;
//! * precision@K = hits in the top K / K; recall@K = hits / relevant items; ndcg@K =
//!   DCG / IDCG with binary gains, discount 1/log2(rank + 1), IDCG over min(K, relevant)
//!   items; hit@K = 1 when the top K holds a hit; each the mean over users.
//!
//! Scores come from a caller's function, a block of users at a time (one matrix product per
//! block), so that the model's formula stays in the model and any score (a most-popular
//! baseline) can be ranked the same way.

use crate::data::Ratings;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// A block of users' scores is at most this many bytes (f64), so that data sets with many
/// items are scored in bounded memory.
const BLOCK_BYTES: usize = 64 << 20;

/// One evaluated user: its row, its relevant items and the items it rated in training.
#[derive(Debug, Clone, PartialEq)]
struct Query {
    row: u32,
    /// Item rows, deduplicated; rows at or past the item count are relevant but never ranked.
    relevant: Vec<u32>,
    /// Item rows rated in training (not candidates), deduplicated.
    excluded: Vec<u32>,
}

/// The users a ranking is measured on, with what each one counts as relevant and excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingTask {
    queries: Vec<Query>,
    users_without_relevant: usize,
}

impl RankingTask {
    /// `evaluated` and `training` in the same user and item rows; a rating is relevant when
    /// at or above `relevance`.
    pub fn new(evaluated: &Ratings, training: &Ratings, relevance: f64) -> Self {
        let mut relevant: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut evaluated_users = std::collections::BTreeSet::new();
        for ((&user, &item), &value) in evaluated
            .users
            .iter()
            .zip(&evaluated.items)
            .zip(&evaluated.values)
        {
            evaluated_users.insert(user);
            if f64::from(value) >= relevance {
                relevant.entry(user).or_default().push(item);
            }
        }
        let mut excluded: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&user, &item) in training.users.iter().zip(&training.items) {
            if relevant.contains_key(&user) {
                excluded.entry(user).or_default().push(item);
            }
        }
        let sorted = |mut items: Vec<u32>| {
            items.sort_unstable();
            items.dedup();
            items
        };
        let queries: Vec<Query> = relevant
            .into_iter()
            .map(|(row, items)| Query {
                row,
                relevant: sorted(items),
                excluded: sorted(excluded.remove(&row).unwrap_or_default()),
            })
            .collect();
        RankingTask {
            users_without_relevant: evaluated_users.len() - queries.len(),
            queries,
        }
    }

    /// Users with at least one relevant item (those the means are over).
    pub fn users(&self) -> usize {
        self.queries.len()
    }

    pub fn users_without_relevant(&self) -> usize {
        self.users_without_relevant
    }
}

/// Each item's place when ties are broken: the order of the raw ids (`raw_ids[row]`).
pub fn tie_order(raw_ids: &[u64]) -> Vec<u32> {
    let mut rows: Vec<u32> = (0..raw_ids.len() as u32).collect();
    rows.sort_by_key(|&row| (raw_ids[row as usize], row));
    let mut place = vec![0; raw_ids.len()];
    for (position, row) in rows.into_iter().enumerate() {
        place[row as usize] = position as u32;
    }
    place
}

/// The four means at one cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CutoffMeans {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub hit: f64,
}

/// The means over a task's users at each requested cutoff.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RankingResult {
    /// Users with a relevant item: the means are over these.
    pub users: usize,
    /// Evaluated users without a relevant item (left out).
    pub users_without_relevant: usize,
    /// By K.
    pub at: BTreeMap<usize, CutoffMeans>,
}

/// How items are ranked: how many item rows there are (candidates are rows `0..items`) and
/// each row's place among ties ([`tie_order`]).
pub struct ItemRows<'a> {
    pub count: usize,
    pub tie_order: &'a [u32],
}

/// Ranks every user of `task` by `scores` (row-major, one row of `items.count` scores per
/// user row asked for) and averages the metrics at each of `cutoffs` (each at least 1).
pub fn measure(
    task: &RankingTask,
    items: &ItemRows,
    cutoffs: &[usize],
    scores: &mut dyn FnMut(&[i64]) -> Result<Vec<f64>>,
) -> Result<RankingResult> {
    let deepest = cutoffs.iter().copied().max().unwrap_or(0);
    let discounts: Vec<f64> = (1..=deepest)
        .map(|r| 1.0 / (r as f64 + 1.0).log2())
        .collect();
    let mut sums: BTreeMap<usize, CutoffMeans> = cutoffs
        .iter()
        .map(|&k| (k, CutoffMeans::default()))
        .collect();
    let block = (BLOCK_BYTES / (items.count.max(1) * 8)).max(1);
    let mut ranker = Ranker::new(items);
    for queries in task.queries.chunks(block) {
        let rows: Vec<i64> = queries.iter().map(|q| i64::from(q.row)).collect();
        let block_scores = scores(&rows)?;
        for (query, user_scores) in queries.iter().zip(block_scores.chunks(items.count.max(1))) {
            let top = ranker.top(query, user_scores, deepest);
            for (&k, sum) in sums.iter_mut() {
                let one = user_metrics(query, top, k, &discounts);
                sum.precision += one.precision;
                sum.recall += one.recall;
                sum.ndcg += one.ndcg;
                sum.hit += one.hit;
            }
        }
    }
    let users = task.users();
    let n = users.max(1) as f64;
    Ok(RankingResult {
        users,
        users_without_relevant: task.users_without_relevant,
        at: sums
            .into_iter()
            .map(|(k, s)| {
                let mean = CutoffMeans {
                    precision: s.precision / n,
                    recall: s.recall / n,
                    ndcg: s.ndcg / n,
                    hit: s.hit / n,
                };
                (k, mean)
            })
            .collect(),
    })
}

/// Scores as `Vec<f64>` from a tensor of a block's scores (any float kind, any device).
pub fn scores_of(block: &tch::Tensor) -> Result<Vec<f64>> {
    Vec::<f64>::try_from(
        block
            .to_kind(tch::Kind::Double)
            .to_device(tch::Device::Cpu)
            .flatten(0, -1),
    )
    .context("reading ranking scores")
}

/// The reusable buffers of one ranking pass.
struct Ranker<'a> {
    items: &'a ItemRows<'a>,
    excluded: Vec<bool>,
    candidates: Vec<u32>,
}

impl<'a> Ranker<'a> {
    fn new(items: &'a ItemRows<'a>) -> Self {
        Ranker {
            items,
            excluded: vec![false; items.count],
            candidates: Vec::with_capacity(items.count),
        }
    }

    /// The user's top `depth` candidates, best first.
    fn top(&mut self, query: &Query, scores: &[f64], depth: usize) -> &[u32] {
        let count = self.items.count.min(scores.len());
        let in_range = |&&item: &&u32| (item as usize) < count;
        for &item in query.excluded.iter().filter(in_range) {
            self.excluded[item as usize] = true;
        }
        self.candidates.clear();
        self.candidates
            .extend((0..count as u32).filter(|&i| !self.excluded[i as usize]));
        for &item in query.excluded.iter().filter(in_range) {
            self.excluded[item as usize] = false;
        }
        let tie = self.items.tie_order;
        let better = |a: &u32, b: &u32| {
            let (a, b) = (*a as usize, *b as usize);
            scores[b].total_cmp(&scores[a]).then(tie[a].cmp(&tie[b]))
        };
        let depth = depth.min(self.candidates.len());
        if depth < self.candidates.len() && depth > 0 {
            self.candidates.select_nth_unstable_by(depth - 1, better);
        }
        self.candidates.truncate(depth);
        self.candidates.sort_unstable_by(better);
        &self.candidates
    }
}

/// One user's metrics at cutoff `k` from its ranked list (at least `k` long unless the user
/// has fewer candidates).
fn user_metrics(query: &Query, top: &[u32], k: usize, discounts: &[f64]) -> CutoffMeans {
    let mut hits = 0usize;
    let mut dcg = 0.0;
    for (rank, item) in top.iter().take(k).enumerate() {
        if query.relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += discounts[rank];
        }
    }
    let relevant = query.relevant.len();
    let ideal: f64 = discounts[..k.min(relevant)].iter().sum();
    CutoffMeans {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant as f64,
        ndcg: if ideal > 0.0 { dcg / ideal } else { 0.0 },
        hit: (hits > 0) as u8 as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(triples: &[(u32, u32, f32)]) -> Ratings {
        let mut r = Ratings::default();
        for &(u, i, v) in triples {
            r.users.push(u);
            r.items.push(i);
            r.values.push(v);
        }
        r
    }

    /// Scores from a fixed table, row-major by user row.
    fn table(rows: Vec<Vec<f64>>) -> impl FnMut(&[i64]) -> Result<Vec<f64>> {
        move |users: &[i64]| {
            Ok(users
                .iter()
                .flat_map(|&u| rows[u as usize].clone())
                .collect())
        }
    }

    fn run(
        task: &RankingTask,
        raw_ids: &[u64],
        cutoffs: &[usize],
        scores: Vec<Vec<f64>>,
    ) -> RankingResult {
        let order = tie_order(raw_ids);
        let items = ItemRows {
            count: raw_ids.len(),
            tie_order: &order,
        };
        measure(task, &items, cutoffs, &mut table(scores)).unwrap()
    }

    #[test]
    fn one_user_by_hand() {
        // Items 0..5; user 0 rated item 4 in training; relevant in test: items 1 and 3.
        let task = RankingTask::new(
            &ratings(&[(0, 1, 5.0), (0, 3, 4.0), (0, 2, 3.0)]),
            &ratings(&[(0, 4, 5.0)]),
            4.0,
        );
        // Ranking without item 4: 0 (0.9), 1 (0.8), 2 (0.7), 3 (0.1).
        let result = run(
            &task,
            &[10, 11, 12, 13, 14],
            &[1, 2, 3],
            vec![vec![0.9, 0.8, 0.7, 0.1, 1.0]],
        );
        let at2 = result.at[&2];
        assert_eq!(at2.precision, 0.5);
        assert_eq!(at2.recall, 0.5);
        assert_eq!(at2.hit, 1.0);
        // Hit at rank 2: DCG 1/log2(3); IDCG 1 + 1/log2(3).
        let d2 = 1.0 / 3f64.log2();
        assert!((at2.ndcg - d2 / (1.0 + d2)).abs() < 1e-15);
        assert_eq!(result.at[&1].hit, 0.0);
        assert_eq!(result.at[&1].ndcg, 0.0);
        assert!((result.at[&3].precision - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn ties_go_to_the_smaller_raw_id_not_the_row() {
        // Rows 0 and 1 tie; row 1 has the smaller raw id, so it ranks first.
        let task = RankingTask::new(&ratings(&[(0, 1, 5.0)]), &Ratings::default(), 4.0);
        let result = run(&task, &[7, 3, 9], &[1], vec![vec![0.5, 0.5, 0.1]]);
        assert_eq!(result.at[&1].hit, 1.0);
        let task = RankingTask::new(&ratings(&[(0, 0, 5.0)]), &Ratings::default(), 4.0);
        let result = run(&task, &[7, 3, 9], &[1], vec![vec![0.5, 0.5, 0.1]]);
        assert_eq!(result.at[&1].hit, 0.0);
    }

    #[test]
    fn k_beyond_the_candidates_still_divides_by_k() {
        // Three items, two rated in training: one candidate, relevant.
        let task = RankingTask::new(
            &ratings(&[(0, 2, 4.0)]),
            &ratings(&[(0, 0, 1.0), (0, 1, 2.0)]),
            4.0,
        );
        let result = run(&task, &[1, 2, 3], &[5], vec![vec![3.0, 2.0, 1.0]]);
        let at5 = result.at[&5];
        assert_eq!(at5.precision, 0.2);
        assert_eq!((at5.recall, at5.ndcg, at5.hit), (1.0, 1.0, 1.0));
    }

    #[test]
    fn users_without_relevant_items_are_left_out_and_counted() {
        let task = RankingTask::new(
            &ratings(&[(0, 0, 5.0), (1, 1, 3.0), (2, 0, 2.0), (2, 1, 3.5)]),
            &Ratings::default(),
            4.0,
        );
        assert_eq!((task.users(), task.users_without_relevant()), (1, 2));
        let result = run(&task, &[1, 2], &[1], vec![vec![1.0, 0.0]; 3]);
        assert_eq!(result.at[&1].precision, 1.0);
        assert_eq!((result.users, result.users_without_relevant), (1, 2));
    }

    #[test]
    fn training_items_are_never_ranked_and_relevant_ones_still_count() {
        // Item 0 is relevant but was rated in training: it cannot be hit, yet it counts in
        // recall's denominator and in IDCG.
        let task = RankingTask::new(
            &ratings(&[(0, 0, 5.0), (0, 1, 5.0)]),
            &ratings(&[(0, 0, 5.0)]),
            4.0,
        );
        let result = run(&task, &[1, 2, 3], &[1, 2], vec![vec![9.0, 1.0, 0.0]]);
        assert_eq!(result.at[&1].hit, 1.0);
        assert_eq!(result.at[&2].recall, 0.5);
        let d2 = 1.0 / 3f64.log2();
        assert!((result.at[&2].ndcg - 1.0 / (1.0 + d2)).abs() < 1e-15);
    }

    #[test]
    fn means_over_several_users() {
        let evaluated = ratings(&[(0, 0, 5.0), (1, 2, 4.0), (2, 1, 4.5), (2, 3, 5.0)]);
        let task = RankingTask::new(&evaluated, &ratings(&[(1, 0, 1.0)]), 4.0);
        let scores = vec![
            vec![0.1, 0.2, 0.3, 0.4],
            vec![0.9, 0.8, 0.7, 0.6],
            vec![0.0, 0.5, 0.5, 1.0],
        ];
        let result = run(&task, &[1, 2, 3, 4], &[2], scores);
        // User 0: top 3, 2 -> no hit; user 1: top 1, 2 -> hit at 2; user 2: top 3, 1 -> 2 hits.
        let at2 = result.at[&2];
        assert!((at2.precision - (0.0 + 0.5 + 1.0) / 3.0).abs() < 1e-15);
        assert!((at2.hit - 2.0 / 3.0).abs() < 1e-15);
        assert!((at2.recall - (0.0 + 1.0 + 1.0) / 3.0).abs() < 1e-15);
    }
}
