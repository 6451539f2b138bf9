//! Label aggregation: one suggested label per item from several graders' ratings.
//!
//! Three aggregators follow the conventions of crowd-kit 1.4.2 (Toloka), which produced
//! the reference vectors that the tests check against:
//!
//! - [`majority_vote`]: the most frequent label per item.
//! - [`wawa`] ("worker agreement with aggregate"): each rater is weighted by their
//!   agreement with the majority vote, then a weighted vote is taken.
//! - [`dawid_skene`]: the EM estimate of Dawid and Skene (1979), "Maximum Likelihood
//!   Estimation of Observer Error-Rates Using the EM Algorithm", Applied Statistics 28(1),
//!   20-28, with one confusion matrix per rater.
//!
//! Conventions shared by all three:
//!
//! - Only labels that occur in the ratings are modeled ([`Responses::categories_modeled`]).
//!   A declared category that no rater chose can never be suggested and has no prior.
//! - Ties go to the category earliest in declared order. crowd-kit breaks ties towards the
//!   smallest label value, which is the same rule whenever categories are declared in
//!   ascending value order, as ordinal grading scales are.
//! - An item with no ratings gets no label (`None`).
//!
//! The results advise the person who adjudicates; they never replace that decision.
//! [`study`] applies them to one guideline field of a study's grades.

mod dawid_skene;
mod majority;
mod math;
pub mod study;

pub use dawid_skene::{dawid_skene, DawidSkene, Stopping, PROBABILITY_FLOOR};
pub use majority::{majority_vote, majority_vote_rater_agreement, wawa, Wawa};

use crate::domain::ratings::RatingMatrix;

/// Error building [`Responses`] from a rating matrix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    #[error(
        "rater mapping has {found} entries but the matrix has {expected} columns; give one rater index per column"
    )]
    RaterMappingLength { found: usize, expected: usize },
}

/// The ratings of a matrix as a flat list of responses, grouped by item.
///
/// The responses of item `i` are `offsets[i]..offsets[i + 1]`, in column order. Labels are
/// indices into [`Responses::categories_modeled`], not into the declared categories.
#[derive(Debug, Clone, PartialEq)]
pub struct Responses {
    n_items: usize,
    n_raters: usize,
    categories_modeled: Vec<usize>,
    offsets: Vec<usize>,
    raters: Vec<u32>,
    labels: Vec<u32>,
}

impl Responses {
    /// Collects the ratings of `matrix`, one rater per column.
    pub fn from_matrix(matrix: &RatingMatrix) -> Self {
        let columns: Vec<usize> = (0..matrix.n_raters()).collect();
        Self::build(matrix, &columns, matrix.n_raters())
    }

    /// Collects the ratings of `matrix`, where column `c` belongs to rater `rater_of_column[c]`.
    ///
    /// Several columns may belong to one rater, for instance a rater who graded each item
    /// more than once. Raters are numbered `0..=max(rater_of_column)`; a number that no
    /// column uses is a rater without responses.
    pub fn from_matrix_with_raters(matrix: &RatingMatrix, rater_of_column: &[usize]) -> Result<Self, AggregateError> {
        if rater_of_column.len() != matrix.n_raters() {
            return Err(AggregateError::RaterMappingLength {
                found: rater_of_column.len(),
                expected: matrix.n_raters(),
            });
        }
        let n_raters = rater_of_column.iter().max().map_or(0, |&max| max + 1);
        Ok(Self::build(matrix, rater_of_column, n_raters))
    }

    fn build(matrix: &RatingMatrix, rater_of_column: &[usize], n_raters: usize) -> Self {
        let mut used = vec![false; matrix.n_categories()];
        for item in 0..matrix.n_items() {
            for cell in matrix.row(item).iter().flatten() {
                used[*cell as usize] = true;
            }
        }
        let categories_modeled: Vec<usize> = (0..used.len()).filter(|&c| used[c]).collect();
        let mut modeled_index = vec![u32::MAX; used.len()];
        for (position, &category) in categories_modeled.iter().enumerate() {
            modeled_index[category] = position as u32;
        }

        let mut offsets = Vec::with_capacity(matrix.n_items() + 1);
        let mut raters = Vec::new();
        let mut labels = Vec::new();
        offsets.push(0);
        for item in 0..matrix.n_items() {
            for (column, cell) in matrix.row(item).iter().enumerate() {
                if let Some(category) = *cell {
                    raters.push(rater_of_column[column] as u32);
                    labels.push(modeled_index[category as usize]);
                }
            }
            offsets.push(raters.len());
        }

        Self { n_items: matrix.n_items(), n_raters, categories_modeled, offsets, raters, labels }
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    pub fn n_raters(&self) -> usize {
        self.n_raters
    }

    /// Number of responses over all items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Declared category indices of the labels that occur, in declared order.
    pub fn categories_modeled(&self) -> &[usize] {
        &self.categories_modeled
    }

    /// Range of response indices that belong to `item`.
    fn item_range(&self, item: usize) -> std::ops::Range<usize> {
        self.offsets[item]..self.offsets[item + 1]
    }
}

/// Index of the first maximum of `scores`, so that ties go to the earliest modeled category.
fn first_max(scores: &[f64]) -> usize {
    let mut best = 0;
    for (index, &score) in scores.iter().enumerate().skip(1) {
        if score > scores[best] {
            best = index;
        }
    }
    best
}
