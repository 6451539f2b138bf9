//! Dawid-Skene EM with one confusion matrix per rater, following crowd-kit 1.4.2.
//!
//! Model (Dawid and Skene, 1979): each item has a hidden true class `k` with prior
//! probability `prior[k]`, and rater `r` reports label `l` for an item of class `k` with
//! probability `confusion[r][k][l]`, independently of the other raters.
//!
//! Steps, with crowd-kit's conventions where the literature leaves a choice. The floor
//! `ε` is [`PROBABILITY_FLOOR`] (1e-10).
//!
//! 1. Start: each item's class probabilities are its vote shares, the prior is their mean
//!    over rated items, and an M-step gives the first confusion matrices.
//! 2. E-step: for each item, `log2 max(prior[k], ε)` plus the sum of
//!    `log2 confusion[r][k][l]` over its responses, then a softmax. Items without
//!    responses take no part.
//! 3. M-step: the prior is the mean of the posteriors. The confusion count `[r][k][l]` is the
//!    sum of the posteriors `p[i][k]` over rater `r`'s responses `l`, floored at `ε`, and
//!    each true-class row is normalised. Labels a rater never used stay at probability 0
//!    and are not floored.
//! 4. Score of an iteration, after its M-step: the sum over responses of
//!    `Σ_k p[i][k] (ln confusion[r][k][l] + ln max(prior[k], ε))`, plus the entropy of the
//!    posteriors floored at `ε`, divided by the number of responses. The prior term is
//!    counted once per response, so the score is not the log-likelihood and can decrease.
//! 5. Stopping ([`Stopping::Tolerance`]): the loop ends after the first iteration whose
//!    score gain over the previous iteration is below the tolerance, and that iteration's
//!    state is returned. The first iteration is compared with minus infinity.
//! 6. Returned posteriors are floored at `ε` as crowd-kit returns them, so after at least
//!    one iteration a row can sum to slightly more than 1. Priors are returned unfloored.
//!
//! Implementation: responses are stored by item (compressed rows) and each response is
//! precomputed as a row index into flat `[rater][observed][true]` tables. One sweep over
//! the items per iteration runs the E-step and sums the confusion counts, the prior and
//! the entropy. The rest of the score comes from the count tables, because
//! `Σ_responses p[i][k] ln confusion[r][k][l]` equals `Σ_{r,l} count[r][k][l] ln confusion[r][k][l]`.
//! Buffers are allocated once per run.
//!
//! Large inputs are split into chunks of consecutive items, each with its own partial
//! sums, which threads can sweep in parallel. The number of chunks depends only on the
//! number of responses and partial sums are added in chunk order, so the result is the
//! same for every thread count.

use std::f64::consts::LN_2;
use std::num::NonZeroUsize;
use std::ops::Range;

use super::math::{exp2_fractions, exp2_nonpositive};
use super::{first_max, Responses};

/// Floor of confusion counts, of priors inside logarithms and of posteriors in the score's
/// entropy and in the result (crowd-kit's `_EPS`).
pub const PROBABILITY_FLOOR: f64 = 1e-10;

/// Responses per chunk of items; smaller inputs are swept as one chunk.
const RESPONSES_PER_CHUNK: usize = 50_000;

/// Largest number of chunks, and so of threads that can share a sweep.
const MAX_CHUNKS: usize = 8;

/// When the EM loop ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopping {
    /// Ends after the first iteration whose score gain is below `tolerance`, or after
    /// `max_iterations` iterations.
    Tolerance { max_iterations: usize, tolerance: f64 },
    /// Runs exactly `iterations` iterations.
    Fixed { iterations: usize },
}

impl Default for Stopping {
    /// crowd-kit's defaults: at most 100 iterations, tolerance 1e-5.
    fn default() -> Self {
        Stopping::Tolerance { max_iterations: 100, tolerance: 1e-5 }
    }
}

/// Estimates of a Dawid-Skene run.
///
/// Class vectors and matrix axes follow `categories_modeled`.
#[derive(Debug, Clone, PartialEq)]
pub struct DawidSkene {
    /// Declared category indices of the modeled classes, in declared order.
    pub categories_modeled: Vec<usize>,
    /// Suggested label of each item (posterior argmax) as a declared category index,
    /// `None` for unrated items.
    pub labels: Vec<Option<usize>>,
    /// Posterior class probabilities, `n_items x categories_modeled.len()`, row-major.
    /// Rows of unrated items are zero; [`DawidSkene::posterior`] returns `None` for them.
    pub posteriors: Vec<f64>,
    /// Prior class probabilities.
    pub priors: Vec<f64>,
    /// Confusion matrix of each rater, `[true class][observed label]`, rows summing to 1;
    /// `None` for raters without responses.
    pub confusion: Vec<Option<Vec<Vec<f64>>>>,
    /// `Σ_k priors[k] * confusion[k][k]` of each rater, `None` for raters without responses.
    pub rater_accuracy: Vec<Option<f64>>,
    /// Number of EM iterations whose state was kept.
    pub iterations_run: usize,
    /// Score of each iteration run, the last one being the returned state's.
    pub score_history: Vec<f64>,
}

impl DawidSkene {
    /// Posterior class probabilities of `item`, `None` when the item has no ratings.
    pub fn posterior(&self, item: usize) -> Option<&[f64]> {
        let n_classes = self.categories_modeled.len();
        self.labels[item]?;
        Some(&self.posteriors[item * n_classes..(item + 1) * n_classes])
    }
}

/// Estimates true classes, priors and rater confusion matrices by EM.
///
/// Up to `threads` threads share each sweep over the items of a large input; the result
/// does not depend on `threads`.
pub fn dawid_skene(responses: &Responses, stopping: Stopping, threads: NonZeroUsize) -> DawidSkene {
    if responses.is_empty() {
        return DawidSkene {
            categories_modeled: Vec::new(),
            labels: vec![None; responses.n_items],
            posteriors: Vec::new(),
            priors: Vec::new(),
            confusion: vec![None; responses.n_raters],
            rater_accuracy: vec![None; responses.n_raters],
            iterations_run: 0,
            score_history: Vec::new(),
        };
    }

    let (max_iterations, tolerance) = match stopping {
        Stopping::Tolerance { max_iterations, tolerance } => (max_iterations, Some(tolerance)),
        Stopping::Fixed { iterations } => (iterations, None),
    };

    let mut fit = Fit::new(responses);
    let mut score_history = Vec::with_capacity(max_iterations.min(1000));
    let mut previous_score = f64::NEG_INFINITY;
    while score_history.len() < max_iterations {
        let entropy = fit.sweep(threads);
        fit.maximize();
        let score = (fit.model.joint_term() + entropy) / responses.len() as f64;
        score_history.push(score);
        if tolerance.is_some_and(|tolerance| score - previous_score < tolerance) {
            break;
        }
        previous_score = score;
    }

    fit.into_result(score_history)
}

/// Parameters of the current state, read by every chunk during a sweep.
struct Model<'a> {
    responses: &'a Responses,
    n_classes: usize,
    n_rated: usize,
    /// Per response, `rater * n_classes + label`: a row of the `[rater][observed]` tables.
    cells: Vec<u32>,
    /// Per `[rater][observed]` row, whether the rater ever gave that label.
    used: Vec<bool>,
    prior: Vec<f64>,
    log2_prior: Vec<f64>,
    /// Confusion probabilities `[rater][observed][true]`.
    confusion: Vec<f64>,
    log2_confusion: Vec<f64>,
    /// Unfloored confusion counts `[rater][observed][true]` behind `confusion`.
    counts: Vec<f64>,
    exp2_fractions: [f64; 32],
}

impl Model<'_> {
    /// Computes `Σ_responses Σ_k p[i][k] (ln confusion[r][k][l] + ln max(prior[k], ε))` from
    /// the count tables, summed per class first as pandas sums per column.
    fn joint_term(&self) -> f64 {
        let k = self.n_classes;
        let mut joint = 0.0;
        for class in 0..k {
            let mut class_joint = 0.0;
            let mut class_weight = 0.0;
            for cell in (0..self.used.len()).filter(|&cell| self.used[cell]) {
                let count = self.counts[cell * k + class];
                class_joint += count * self.confusion[cell * k + class].ln();
                class_weight += count;
            }
            joint += class_joint + class_weight * self.prior[class].max(PROBABILITY_FLOOR).ln();
        }
        joint
    }
}

/// Posteriors and partial sums of a range of consecutive items.
struct Chunk {
    items: Range<usize>,
    /// Posteriors, one row per item of the chunk.
    posteriors: Vec<f64>,
    /// Confusion counts `[rater][observed][true]` from this chunk.
    counts: Vec<f64>,
    prior_sum: Vec<f64>,
    /// Per class: the current item's log2 confusion sum, and the entropy sum.
    log_sum: Vec<f64>,
    entropy: Vec<f64>,
}

/// State of one EM run.
struct Fit<'a> {
    model: Model<'a>,
    chunks: Vec<Chunk>,
}

impl<'a> Fit<'a> {
    /// Builds the starting state from vote shares.
    fn new(responses: &'a Responses) -> Self {
        let k = responses.categories_modeled.len();
        let table_len = responses.n_raters * k * k;
        let mut used = vec![false; responses.n_raters * k];
        let cells: Vec<u32> = responses
            .raters
            .iter()
            .zip(&responses.labels)
            .map(|(&rater, &label)| {
                let cell = rater as usize * k + label as usize;
                used[cell] = true;
                cell as u32
            })
            .collect();
        let n_rated = (0..responses.n_items).filter(|&item| !responses.item_range(item).is_empty()).count();

        let model = Model {
            responses,
            n_classes: k,
            n_rated,
            cells,
            used,
            prior: vec![0.0; k],
            log2_prior: vec![0.0; k],
            confusion: vec![0.0; table_len],
            log2_confusion: vec![f64::NEG_INFINITY; table_len],
            counts: vec![0.0; table_len],
            exp2_fractions: exp2_fractions(),
        };
        let chunks = chunk_ranges(responses)
            .into_iter()
            .map(|items| Chunk {
                posteriors: vec![0.0; items.len() * k],
                counts: vec![0.0; table_len],
                prior_sum: vec![0.0; k],
                log_sum: vec![0.0; k],
                entropy: vec![0.0; k],
                items,
            })
            .collect();
        let mut fit = Self { model, chunks };

        for chunk in &mut fit.chunks {
            for (row, item) in chunk.items.clone().enumerate() {
                let range = responses.item_range(item);
                if range.is_empty() {
                    continue;
                }
                let share = &mut chunk.posteriors[row * k..][..k];
                for response in range.clone() {
                    share[responses.labels[response] as usize] += 1.0;
                }
                let n_responses = range.len() as f64;
                for value in share.iter_mut() {
                    *value /= n_responses;
                }
                accumulate(&mut chunk.prior_sum, &mut chunk.counts, &fit.model.cells[range], share, k);
            }
        }
        fit.maximize();
        fit
    }

    /// Runs the E-step on every chunk and returns the entropy of the new posteriors.
    fn sweep(&mut self, threads: NonZeroUsize) -> f64 {
        let model = &self.model;
        let threads = threads.get().min(self.chunks.len());
        if threads == 1 {
            for chunk in &mut self.chunks {
                chunk.sweep(model);
            }
        } else {
            let per_thread = self.chunks.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let mut groups = self.chunks.chunks_mut(per_thread);
                let own = groups.next().expect("at least one chunk");
                for group in groups {
                    scope.spawn(move || group.iter_mut().for_each(|chunk| chunk.sweep(model)));
                }
                own.iter_mut().for_each(|chunk| chunk.sweep(model));
            });
        }

        // Sum per class over chunks first, then over classes, as pandas sums per column.
        (0..model.n_classes).map(|class| self.chunks.iter().map(|chunk| chunk.entropy[class]).sum::<f64>()).sum()
    }

    /// Computes the prior and the confusion matrices from the chunks' sums (M-step).
    fn maximize(&mut self) {
        let model = &mut self.model;
        let k = model.n_classes;
        model.counts.fill(0.0);
        model.prior.fill(0.0);
        for chunk in &self.chunks {
            for (total, count) in model.counts.iter_mut().zip(&chunk.counts) {
                *total += count;
            }
            for (total, sum) in model.prior.iter_mut().zip(&chunk.prior_sum) {
                *total += sum;
            }
        }

        for class in 0..k {
            model.prior[class] /= model.n_rated as f64;
            model.log2_prior[class] = model.prior[class].max(PROBABILITY_FLOOR).log2();
        }

        for rater in 0..model.responses.n_raters {
            for true_class in 0..k {
                let mut row_total = 0.0;
                for observed in 0..k {
                    let cell = rater * k + observed;
                    if model.used[cell] {
                        row_total += model.counts[cell * k + true_class].max(PROBABILITY_FLOOR);
                    }
                }
                for observed in 0..k {
                    let cell = rater * k + observed;
                    let index = cell * k + true_class;
                    if model.used[cell] {
                        model.confusion[index] = model.counts[index].max(PROBABILITY_FLOOR) / row_total;
                        model.log2_confusion[index] = model.confusion[index].log2();
                    }
                }
            }
        }
    }

    fn into_result(self, score_history: Vec<f64>) -> DawidSkene {
        let model = self.model;
        let k = model.n_classes;
        let responses = model.responses;
        let iterations_run = score_history.len();

        let mut posteriors = Vec::with_capacity(responses.n_items * k);
        for chunk in &self.chunks {
            posteriors.extend_from_slice(&chunk.posteriors);
        }
        let mut labels = Vec::with_capacity(responses.n_items);
        for item in 0..responses.n_items {
            if responses.item_range(item).is_empty() {
                labels.push(None);
                continue;
            }
            let row = &mut posteriors[item * k..][..k];
            labels.push(Some(responses.categories_modeled[first_max(row)]));
            if iterations_run > 0 {
                for value in row {
                    *value = value.max(PROBABILITY_FLOOR);
                }
            }
        }

        let mut confusion = Vec::with_capacity(responses.n_raters);
        let mut rater_accuracy = Vec::with_capacity(responses.n_raters);
        for rater in 0..responses.n_raters {
            if !model.used[rater * k..][..k].iter().any(|&used| used) {
                confusion.push(None);
                rater_accuracy.push(None);
                continue;
            }
            let matrix: Vec<Vec<f64>> = (0..k)
                .map(|true_class| {
                    (0..k).map(|observed| model.confusion[(rater * k + observed) * k + true_class]).collect()
                })
                .collect();
            let accuracy = (0..k).map(|class| model.prior[class] * matrix[class][class]).sum();
            confusion.push(Some(matrix));
            rater_accuracy.push(Some(accuracy));
        }

        DawidSkene {
            categories_modeled: responses.categories_modeled.clone(),
            labels,
            posteriors,
            priors: model.prior,
            confusion,
            rater_accuracy,
            iterations_run,
            score_history,
        }
    }
}

impl Chunk {
    fn sweep(&mut self, model: &Model) {
        // Fixed class counts get their own copy of the loop, unrolled by the compiler.
        match model.n_classes {
            2 => self.sweep_classes::<2>(model),
            3 => self.sweep_classes::<3>(model),
            4 => self.sweep_classes::<4>(model),
            5 => self.sweep_classes::<5>(model),
            6 => self.sweep_classes::<6>(model),
            7 => self.sweep_classes::<7>(model),
            8 => self.sweep_classes::<8>(model),
            _ => self.sweep_classes::<0>(model),
        }
    }

    /// [`Chunk::sweep`] for `K` classes, or for `model.n_classes` classes when `K` is 0.
    fn sweep_classes<const K: usize>(&mut self, model: &Model) {
        let k = if K == 0 { model.n_classes } else { K };
        let responses = model.responses;
        let floor_entropy = -PROBABILITY_FLOOR * PROBABILITY_FLOOR.ln();
        let log2_prior = &model.log2_prior[..k];
        let (log_sum, entropy) = (&mut self.log_sum[..k], &mut self.entropy[..k]);
        self.counts.fill(0.0);
        self.prior_sum.fill(0.0);
        entropy.fill(0.0);

        for (row, item) in self.items.clone().enumerate() {
            let range = responses.item_range(item);
            if range.is_empty() {
                continue;
            }
            let cells = &model.cells[range];

            // Sum of the log2 confusion entries of the item's responses, per true class.
            log_sum.fill(0.0);
            for &cell in cells {
                let entries = &model.log2_confusion[cell as usize * k..][..k];
                for (sum, &entry) in log_sum.iter_mut().zip(entries) {
                    *sum += entry;
                }
            }

            // Softmax of log2 prior + log sum, shifted so that the row maximum is 0.
            // `log_sum` then contains the shifted logarithms, which also give the entropy
            // term `-q ln q` with `ln q = shifted * ln 2 - ln total`: one logarithm per item.
            // A posterior below the floor counts as the floor, as in crowd-kit.
            let mut max = f64::NEG_INFINITY;
            for (sum, &prior) in log_sum.iter_mut().zip(log2_prior) {
                *sum += prior;
                if *sum > max {
                    max = *sum;
                }
            }
            let posterior = &mut self.posteriors[row * k..][..k];
            let mut total = 0.0;
            for (value, shifted) in posterior.iter_mut().zip(log_sum.iter_mut()) {
                *shifted -= max;
                *value = exp2_nonpositive(*shifted, &model.exp2_fractions);
                total += *value;
            }
            let ln_total = total.ln();
            let inverse_total = 1.0 / total;
            for class in 0..k {
                posterior[class] *= inverse_total;
                entropy[class] += if posterior[class] >= PROBABILITY_FLOOR {
                    -posterior[class] * (log_sum[class] * LN_2 - ln_total)
                } else {
                    floor_entropy
                };
            }

            accumulate(&mut self.prior_sum, &mut self.counts, cells, posterior, k);
        }
    }
}

/// Splits the items into consecutive ranges with about `RESPONSES_PER_CHUNK` responses each.
fn chunk_ranges(responses: &Responses) -> Vec<Range<usize>> {
    let n_chunks = (responses.len() / RESPONSES_PER_CHUNK).clamp(1, MAX_CHUNKS);
    let mut ranges = Vec::with_capacity(n_chunks);
    let mut start = 0;
    for chunk in 1..=n_chunks {
        let target = responses.len() * chunk / n_chunks;
        let mut end = start;
        while end < responses.n_items && responses.offsets[end] < target {
            end += 1;
        }
        if chunk == n_chunks {
            end = responses.n_items;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Adds an item's class probabilities to the prior sum and to the count row of each response.
fn accumulate(prior_sum: &mut [f64], counts: &mut [f64], cells: &[u32], probabilities: &[f64], k: usize) {
    for (sum, &probability) in prior_sum.iter_mut().zip(probabilities) {
        *sum += probability;
    }
    for &cell in cells {
        let row = &mut counts[cell as usize * k..][..k];
        for (count, &probability) in row.iter_mut().zip(probabilities) {
            *count += probability;
        }
    }
}
