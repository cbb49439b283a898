//! Successive halving (ASHA's rule, run rung-synchronously): every trial trains to the first
//! rung (`min_epochs`); when all of a rung's trials have finished, the best 1/η of them by the
//! validation metric (at least one; ties go to the smaller trial index) continue to the next
//! rung (`min_epochs × η^k`, the last one `max_epochs`), and the others stop there.
//!
//! Asynchronous ASHA promotes a trial as soon as it is in the top 1/η of the trials that have
//! reported so far, so which trials continue depends on which ones happened to finish first:
//! on the number of jobs, the machine's load, Slurm's queue. Waiting for the whole rung
//! costs some idle workers at the end of each rung, and buys a result that depends only on
//! the trials' numbers: the same choice with `--jobs 1`, `--jobs 4` or Slurm, and after an
//! interrupted tune is resumed.
//!
//! Everything here is a pure function of the rungs and the values the caller measures, so
//! that the rule is tested on a made-up objective without training anything.

use anyhow::{bail, Result};

/// The rungs' epochs: `min`, `min × η`, `min × η²`, ... below `max`, then `max`.
pub fn rungs(min_epochs: usize, max_epochs: usize, reduction: usize) -> Result<Vec<usize>> {
    if min_epochs == 0 {
        bail!("--min-epochs 0: must be at least 1");
    }
    if min_epochs > max_epochs {
        bail!("--min-epochs {min_epochs}: must not exceed --max-epochs {max_epochs}");
    }
    if reduction < 2 {
        bail!("--reduction {reduction}: must be at least 2");
    }
    let mut rungs = Vec::new();
    let mut epochs = min_epochs;
    while epochs < max_epochs {
        rungs.push(epochs);
        epochs = epochs.saturating_mul(reduction);
    }
    rungs.push(max_epochs);
    Ok(rungs)
}

/// What a trial produced at a rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measured {
    /// The selection metric on validation (over folds: the mean).
    Value(f64),
    Diverged,
    Failed,
}

/// Why a trial stopped (rungs counted from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// Not finished: the tune was interrupted before its rung ended.
    Pending,
    /// Not among the best 1/η at this rung.
    Pruned {
        rung: usize,
    },
    /// Trained to the last rung.
    Completed,
    Diverged {
        rung: usize,
    },
    Failed {
        rung: usize,
    },
}

/// One trial's way up the rungs.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The validation value at each rung it reached (`None`: diverged or failed there).
    pub values: Vec<Option<f64>>,
    pub stop: Stop,
}

/// `a` is better than `b` (`higher_is_better` says the direction); NaN is never better.
fn better(a: f64, b: f64, higher_is_better: bool) -> bool {
    if higher_is_better {
        a > b
    } else {
        a < b
    }
}

/// The trials that continue from a rung: the best `max(1, n / η)` of the `n` that reached it,
/// by value, ties to the smaller index; trials without a finite value never continue.
/// Returned in index order.
pub fn promote(rung: &[(usize, Measured)], reduction: usize, higher_is_better: bool) -> Vec<usize> {
    let keep = (rung.len() / reduction.max(1)).max(1);
    let mut ranked: Vec<(usize, f64)> = rung
        .iter()
        .filter_map(|&(trial, measured)| match measured {
            Measured::Value(v) if v.is_finite() => Some((trial, v)),
            _ => None,
        })
        .collect();
    ranked.sort_by(|a, b| {
        if better(a.1, b.1, higher_is_better) {
            std::cmp::Ordering::Less
        } else if better(b.1, a.1, higher_is_better) {
            std::cmp::Ordering::Greater
        } else {
            a.0.cmp(&b.0)
        }
    });
    let mut kept: Vec<usize> = ranked.into_iter().take(keep).map(|(t, _)| t).collect();
    kept.sort_unstable();
    kept
}

/// Trains the given trials to rung `k` and measures them; `None` when a signal stopped it.
pub type Measure<'a> = dyn FnMut(usize, &[usize]) -> Result<Option<Vec<Measured>>> + 'a;

/// Runs the ladder: `measure(k, trials)` trains `trials` to rung `k` and returns each one's
/// result in the same order, or `None` when a signal stopped it (the trials still on the
/// ladder are then `Pending`). With one rung this is plain random or grid search.
pub fn successive_halving(
    trials: usize,
    rungs: usize,
    reduction: usize,
    higher_is_better: bool,
    measure: &mut Measure,
) -> Result<Vec<Progress>> {
    let mut progress: Vec<Progress> = (0..trials)
        .map(|_| Progress {
            values: Vec::new(),
            stop: Stop::Pending,
        })
        .collect();
    let mut alive: Vec<usize> = (0..trials).collect();
    for rung in 0..rungs {
        let Some(measured) = measure(rung, &alive)? else {
            return Ok(progress);
        };
        let results: Vec<(usize, Measured)> = alive.iter().copied().zip(measured).collect();
        for &(trial, result) in &results {
            let entry = &mut progress[trial];
            entry.values.push(match result {
                Measured::Value(v) => Some(v),
                _ => None,
            });
            match result {
                Measured::Diverged => entry.stop = Stop::Diverged { rung },
                Measured::Failed => entry.stop = Stop::Failed { rung },
                Measured::Value(_) if rung + 1 == rungs => entry.stop = Stop::Completed,
                Measured::Value(_) => {}
            }
        }
        if rung + 1 == rungs {
            break;
        }
        let promoted = promote(&results, reduction, higher_is_better);
        for &(trial, result) in &results {
            if matches!(result, Measured::Value(_)) && !promoted.contains(&trial) {
                progress[trial].stop = Stop::Pruned { rung };
            }
        }
        alive = promoted;
    }
    Ok(progress)
}

/// The chosen trial: the best value at the last rung among those that completed (ties to the
/// smaller index).
pub fn choose(progress: &[Progress], higher_is_better: bool) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (trial, p) in progress.iter().enumerate() {
        if p.stop != Stop::Completed {
            continue;
        }
        let Some(Some(value)) = p.values.last().copied() else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        if best.is_none_or(|(_, b)| better(value, b, higher_is_better)) {
            best = Some((trial, value));
        }
    }
    best.map(|(trial, _)| trial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_the_reduction_and_end_at_max_epochs() {
        assert_eq!(rungs(1, 27, 3).unwrap(), vec![1, 3, 9, 27]);
        assert_eq!(rungs(2, 20, 3).unwrap(), vec![2, 6, 18, 20]);
        assert_eq!(rungs(5, 5, 3).unwrap(), vec![5]);
        assert!(rungs(0, 5, 3).is_err());
        assert!(rungs(6, 5, 3).is_err());
        assert!(rungs(1, 5, 1).is_err());
    }

    #[test]
    fn promotion_keeps_the_best_third_with_ties_to_the_smaller_index() {
        use Measured::*;
        let rung = [
            (0, Value(0.95)),
            (1, Value(0.91)),
            (2, Diverged),
            (3, Value(0.91)),
            (4, Value(0.93)),
            (5, Failed),
            (6, Value(0.90)),
        ];
        // 7 trials / 3 = 2 continue: 0.90 (trial 6), then the tie at 0.91 goes to trial 1.
        assert_eq!(promote(&rung, 3, false), vec![1, 6]);
        // Higher is better (accuracy): 0.95 and 0.93.
        assert_eq!(promote(&rung, 3, true), vec![0, 4]);
        // Fewer trials than η: one continues.
        assert_eq!(promote(&rung[..2], 3, false), vec![1]);
        // Nothing with a value: nothing continues.
        assert_eq!(
            promote(&[(0, Diverged), (1, Failed)], 3, false),
            Vec::<usize>::new()
        );
    }

    /// A made-up objective: trial t's validation loss at rung k.
    fn table(trial: usize, rung: usize) -> Measured {
        const LOSS: [[f64; 3]; 9] = [
            [1.0, 0.90, 0.80],
            [0.9, 0.85, 0.84],
            [1.2, 0.70, 0.60], // slow starter: pruned at rung 0 despite its late promise
            [0.8, 0.75, 0.74],
            [0.7, 0.72, 0.73],
            [0.95, 0.9, 0.9],
            [f64::NAN, 0.0, 0.0],
            [0.85, 0.80, 0.79],
            [0.99, 0.1, 0.1],
        ];
        match LOSS[trial][rung] {
            v if v.is_nan() => Measured::Diverged,
            v => Measured::Value(v),
        }
    }

    #[test]
    fn successive_halving_on_a_fake_objective() {
        let mut asked: Vec<(usize, Vec<usize>)> = Vec::new();
        let progress = successive_halving(9, 3, 3, false, &mut |rung, trials| {
            asked.push((rung, trials.to_vec()));
            Ok(Some(trials.iter().map(|&t| table(t, rung)).collect()))
        })
        .unwrap();
        // Rung 0: 9 trials, the best 3 (0.7, 0.8, 0.85) go on; rung 1: the best 1 of 3.
        assert_eq!(
            asked,
            vec![(0, (0..9).collect()), (1, vec![3, 4, 7]), (2, vec![4])]
        );
        assert_eq!(progress[2].stop, Stop::Pruned { rung: 0 });
        assert_eq!(progress[6].stop, Stop::Diverged { rung: 0 });
        assert_eq!(progress[6].values, vec![None]);
        assert_eq!(progress[3].stop, Stop::Pruned { rung: 1 });
        assert_eq!(progress[3].values, vec![Some(0.8), Some(0.75)]);
        assert_eq!(progress[4].stop, Stop::Completed);
        assert_eq!(progress[4].values, vec![Some(0.7), Some(0.72), Some(0.73)]);
        assert_eq!(choose(&progress, false), Some(4));
    }

    #[test]
    fn an_interrupted_ladder_leaves_its_trials_pending() {
        let progress = successive_halving(4, 2, 2, true, &mut |rung, trials| {
            Ok((rung == 0).then(|| trials.iter().map(|&t| Measured::Value(t as f64)).collect()))
        })
        .unwrap();
        assert_eq!(progress[0].stop, Stop::Pruned { rung: 0 });
        assert_eq!(progress[3].stop, Stop::Pending);
        assert_eq!(choose(&progress, true), None);
    }
}
