//! Percentile bootstrap confidence intervals over items (Efron & Tibshirani 1993).
//!
//! Each replicate draws as many items as the matrix has non-empty items, uniformly with
//! replacement, and recomputes every coefficient. Items with no rating are not drawn, since
//! every coefficient drops them anyway. A replicate does not rebuild a matrix. It counts how
//! often each distinct row was drawn and adds that row's contribution to the per-item sums
//! (see `summary`), scaled by the count. After the draws, its cost depends on the number of
//! distinct rows, not on the number of items.
//!
//! Replicate k uses ChaCha8 seeded with `seed` on stream k, so the intervals depend only on
//! the data, the seed, the replicate count and the level, not on the number of threads.
//! A replicate in which a coefficient is undefined is skipped for that coefficient. The
//! interval takes the (1 − level)/2 and (1 + level)/2 quantiles of the remaining values with
//! linear interpolation between order statistics (numpy's default, Hyndman & Fan type 7).

use std::collections::BTreeMap;
use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::ratings::RatingMatrix;

use super::patterns::Patterns;
use super::summary::{Layout, Scratch, Summary, Sums};
use super::{evaluate, Metric};

/// Replicate count for callers without a reason to choose another.
pub const DEFAULT_REPLICATES: usize = 1000;

/// Share of replicates in which a coefficient must be defined for it to get an interval.
pub const MIN_DEFINED_SHARE: f64 = 0.5;

/// Coefficient values of one replicate, in [`Metric::ALL`] order; `None` where undefined.
type ReplicateValues = [Option<f64>; Metric::ALL.len()];

/// Computes percentile bootstrap intervals `(lower, upper)` by metric name.
///
/// A metric gets no interval when it is undefined on the whole matrix, or defined in fewer
/// than max(2, ⌈[`MIN_DEFINED_SHARE`] × `replicates`⌉) replicates. The map is empty when
/// `replicates` is 0, `level` is not strictly between 0 and 1, or no item has a rating.
/// Replicates run on all available cores.
pub fn bootstrap(m: &RatingMatrix, replicates: usize, seed: u64, level: f64) -> BTreeMap<String, (f64, f64)> {
    let mut intervals = BTreeMap::new();
    if replicates == 0 || !(level > 0.0 && level < 1.0) {
        return intervals;
    }
    let summary = Summary::from_matrix(m);
    let sampler = Sampler::new(&summary, MAX_PRECOMPUTED_ENTRIES);
    if summary.patterns().item_patterns().is_empty() {
        return intervals;
    }

    let replicate_values = run_replicates(&sampler, replicates, seed);
    let min_defined = ((MIN_DEFINED_SHARE * replicates as f64).ceil() as usize).max(2);
    let estimates = summary.sums();
    for (index, metric) in Metric::ALL.into_iter().enumerate() {
        if evaluate(metric, &estimates).is_err() {
            continue;
        }
        let mut values: Vec<f64> = replicate_values.iter().filter_map(|values| values[index]).collect();
        if values.len() < min_defined {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let tail = (1.0 - level) / 2.0;
        intervals.insert(metric.name().to_owned(), (quantile(&values, tail), quantile(&values, 1.0 - tail)));
    }
    intervals
}

/// Quantile `p` of sorted, non-empty `values` by linear interpolation (type 7).
fn quantile(values: &[f64], p: f64) -> f64 {
    let position = (values.len() - 1) as f64 * p;
    let lower = position.floor() as usize;
    let upper = (lower + 1).min(values.len() - 1);
    values[lower] + (position - lower as f64) * (values[upper] - values[lower])
}

/// Maximum number of precomputed (slot, value) entries, 12 bytes each (about 96 MiB). Beyond
/// it, each replicate recomputes the contributions of the rows it drew, which is slower.
const MAX_PRECOMPUTED_ENTRIES: usize = 8 << 20;

/// Each distinct row's contribution to the sums, as sparse (slot, value) lists.
struct Contributions {
    /// Contributions of pattern p are `slots[offsets[p]..offsets[p + 1]]` and the same range of `values`.
    offsets: Vec<usize>,
    slots: Vec<u32>,
    values: Vec<f64>,
}

impl Contributions {
    /// Precomputes every row's contributions, or returns `None` past `max_entries` entries.
    fn new(layout: &Layout, patterns: &Patterns, max_entries: usize) -> Option<Self> {
        let mut offsets = Vec::with_capacity(patterns.len() + 1);
        let mut slots = Vec::new();
        let mut values = Vec::new();
        let mut scratch = layout.scratch();
        offsets.push(0);
        for pattern in 0..patterns.len() {
            layout.emit(patterns.row(pattern), &mut scratch, |slot, value| {
                slots.push(slot as u32);
                values.push(value);
            });
            if slots.len() > max_entries {
                return None;
            }
            offsets.push(slots.len());
        }
        Some(Self { offsets, slots, values })
    }
}

/// Draws replicates and evaluates every metric on them.
struct Sampler<'a> {
    layout: &'a Layout,
    patterns: &'a Patterns,
    contributions: Option<Contributions>,
}

impl<'a> Sampler<'a> {
    fn new(summary: &'a Summary, max_precomputed_entries: usize) -> Self {
        let layout = summary.layout();
        let patterns = summary.patterns();
        let contributions = Contributions::new(layout, patterns, max_precomputed_entries);
        Self { layout, patterns, contributions }
    }

    /// Draws replicate `index` and evaluates every metric on it.
    fn replicate(&self, seed: u64, index: usize, buffers: &mut Buffers) -> ReplicateValues {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);

        let Buffers { draws, sums, scratch } = buffers;
        draws.fill(0);
        let item_patterns = self.patterns.item_patterns();
        // `item_patterns` has fewer than 2^32 entries (see `Patterns`), so its length fits in u32.
        let n_items = item_patterns.len() as u32;
        for _ in 0..n_items {
            let item = rng.random_range(0..n_items) as usize;
            draws[item_patterns[item] as usize] += 1;
        }

        sums.fill(0.0);
        for (pattern, &count) in draws.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let weight = f64::from(count);
            match &self.contributions {
                Some(contributions) => {
                    let range = contributions.offsets[pattern]..contributions.offsets[pattern + 1];
                    let slots = &contributions.slots[range.clone()];
                    for (&slot, &value) in slots.iter().zip(&contributions.values[range]) {
                        sums[slot as usize] += weight * value;
                    }
                }
                None => {
                    self.layout.emit(self.patterns.row(pattern), scratch, |slot, value| sums[slot] += weight * value);
                }
            }
        }

        let view = Sums::new(self.layout, sums);
        Metric::ALL.map(|metric| evaluate(metric, &view).ok())
    }

    /// Runs the replicates with indices in `range`, in order.
    fn run(&self, seed: u64, range: Range<usize>) -> Vec<ReplicateValues> {
        let mut buffers = Buffers {
            draws: vec![0; self.patterns.len()],
            sums: vec![0.0; self.layout.len()],
            scratch: self.layout.scratch(),
        };
        range.map(|index| self.replicate(seed, index, &mut buffers)).collect()
    }
}

/// Per-thread working memory of [`Sampler::replicate`].
struct Buffers {
    /// Times each distinct row was drawn.
    draws: Vec<u32>,
    sums: Vec<f64>,
    scratch: Scratch,
}

/// Runs replicates 0..count split over the available cores, in replicate order.
fn run_replicates(sampler: &Sampler<'_>, count: usize, seed: u64) -> Vec<ReplicateValues> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, count);
    let chunk = count.div_ceil(threads);
    let ranges: Vec<Range<usize>> = (0..count).step_by(chunk).map(|start| start..(start + chunk).min(count)).collect();

    let mut results = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let mut spawned = Vec::new();
        for range in ranges.iter().skip(1) {
            let work = range.clone();
            let handle = std::thread::Builder::new().spawn_scoped(scope, move || sampler.run(seed, work));
            spawned.push((range.clone(), handle));
        }
        results.extend(sampler.run(seed, ranges[0].clone()));
        for (range, handle) in spawned {
            // A thread that could not start (or failed) is redone here; the result is the same.
            match handle.ok().and_then(|handle| handle.join().ok()) {
                Some(values) => results.extend(values),
                None => results.extend(sampler.run(seed, range)),
            }
        }
    });
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ratings::RatingMatrix;

    #[test]
    fn replicates_do_not_depend_on_thread_split() {
        let rows: Vec<Vec<Option<u32>>> = (0..60u32)
            .map(|i| vec![Some(i % 3), Some((i / 2) % 3), if i % 5 == 0 { None } else { Some(i % 3) }])
            .collect();
        let m =
            RatingMatrix::new(RatingMatrix::positional_categories(["a", "b", "c"]), &rows).expect("valid test matrix");
        let summary = Summary::from_matrix(&m);
        let sampler = Sampler::new(&summary, MAX_PRECOMPUTED_ENTRIES);
        let split = run_replicates(&sampler, 37, 5);
        let single = sampler.run(5, 0..37);
        let shifted = sampler.run(5, 20..37);
        assert_eq!(split, single);
        assert_eq!(&single[20..], shifted.as_slice());

        // Without precomputed contributions the sums are added in the same order.
        let recomputing = Sampler::new(&summary, 0);
        assert!(recomputing.contributions.is_none());
        assert_eq!(recomputing.run(5, 0..37), single);
    }

    #[test]
    fn quantile_interpolates_linearly() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&values, 0.0), 1.0);
        assert_eq!(quantile(&values, 1.0), 5.0);
        assert_eq!(quantile(&values, 0.5), 3.0);
        assert!((quantile(&values, 0.1) - 1.4).abs() < 1e-15);
        assert_eq!(quantile(&[7.0], 0.975), 7.0);
    }
}
