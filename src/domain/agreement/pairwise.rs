//! Breakdowns by rater: Cohen's kappa for every pair of raters, the confusion matrix of two
//! raters, and one rater against reference labels (for example an adjudicated or
//! majority-vote label per item).
//!
//! Kappa here is the two-rater Cohen's kappa of `cohen` (scikit-learn's definition, weights by
//! category position), computed on the items both sides rated. Confusion matrices are in the
//! declared category order, unused categories included.

use std::cmp::Ordering;

use serde::Serialize;

use crate::domain::ratings::RatingMatrix;

use super::cohen::kappa_from_confusion;
use super::{AgreementError, Undefined, Weighting};

/// Counts of items by the category each side gave, in declared order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    /// `counts[a][b]`: items the first side rated a and the second side rated b.
    pub counts: Vec<Vec<u64>>,
    /// Items both sides rated.
    pub n_items: u64,
}

impl ConfusionMatrix {
    fn new(n_categories: usize) -> Self {
        Self { counts: vec![vec![0; n_categories]; n_categories], n_items: 0 }
    }

    fn add(&mut self, first: usize, second: usize) {
        self.counts[first][second] += 1;
        self.n_items += 1;
    }

    /// Cohen's kappa of this table.
    pub fn kappa(&self, weighting: Weighting) -> Result<f64, Undefined> {
        let q = self.counts.len();
        let flat: Vec<f64> = self.counts.iter().flatten().map(|&count| count as f64).collect();
        kappa_from_confusion(&flat, q, weighting)
    }
}

/// One rater compared with a reference label per item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceComparison {
    pub rater: usize,
    /// Rows: the rater's category; columns: the reference category.
    pub confusion: ConfusionMatrix,
    pub kappa: Result<f64, Undefined>,
    pub kappa_linear: Result<f64, Undefined>,
    pub kappa_quadratic: Result<f64, Undefined>,
    /// Mean of (rater's category position − reference position) over the items compared:
    /// positive when the rater tends to grade higher in the declared order. `None` when no
    /// item has both a rating and a reference label.
    pub mean_signed_difference: Option<f64>,
}

/// Confusion matrix of raters `first` (rows) and `second` (columns) over the items both rated.
pub fn confusion_matrix(m: &RatingMatrix, first: usize, second: usize) -> Result<ConfusionMatrix, AgreementError> {
    check_rater(m, first)?;
    check_rater(m, second)?;
    let mut confusion = ConfusionMatrix::new(m.n_categories());
    for item in 0..m.n_items() {
        if let (Some(a), Some(b)) = (m.get(item, first), m.get(item, second)) {
            confusion.add(a, b);
        }
    }
    Ok(confusion)
}

/// Cohen's kappa for every ordered pair of raters; entry `[a][b]` compares rater a with rater b.
///
/// The matrix is symmetric. The diagonal is undefined, because a rater is not compared with
/// themselves.
pub fn pairwise_cohen(m: &RatingMatrix, weighting: Weighting) -> Vec<Vec<Result<f64, Undefined>>> {
    let r = m.n_raters();
    let pair_kappa = |a: usize, b: usize| match confusion_matrix(m, a, b) {
        Ok(confusion) => confusion.kappa(weighting),
        Err(error) => Err(Undefined::new(error.to_string())),
    };
    // upper[a][b − a − 1] compares rater a with a later rater b.
    let upper: Vec<Vec<Result<f64, Undefined>>> =
        (0..r).map(|a| ((a + 1)..r).map(|b| pair_kappa(a, b)).collect()).collect();
    (0..r)
        .map(|a| {
            (0..r)
                .map(|b| match a.cmp(&b) {
                    Ordering::Less => upper[a][b - a - 1].clone(),
                    Ordering::Greater => upper[b][a - b - 1].clone(),
                    Ordering::Equal => Err(Undefined::new("a rater is not compared with themselves")),
                })
                .collect()
        })
        .collect()
}

/// Compares `rater` with `reference`, one optional category index per item.
///
/// Fails when the rater does not exist, the reference length differs from the number of
/// items, or a reference label is not a declared category.
pub fn compare_with_reference(
    m: &RatingMatrix,
    rater: usize,
    reference: &[Option<usize>],
) -> Result<ReferenceComparison, AgreementError> {
    check_rater(m, rater)?;
    if reference.len() != m.n_items() {
        return Err(AgreementError::ReferenceLength { found: reference.len(), expected: m.n_items() });
    }
    let q = m.n_categories();
    let mut confusion = ConfusionMatrix::new(q);
    let mut difference_sum = 0i64;
    for (item, label) in reference.iter().enumerate() {
        let Some(truth) = *label else { continue };
        if truth >= q {
            return Err(AgreementError::ReferenceCategoryOutOfRange { item, index: truth, n_categories: q });
        }
        if let Some(rating) = m.get(item, rater) {
            confusion.add(rating, truth);
            difference_sum += rating as i64 - truth as i64;
        }
    }
    let mean_signed_difference = (confusion.n_items > 0).then(|| difference_sum as f64 / confusion.n_items as f64);
    Ok(ReferenceComparison {
        rater,
        kappa: confusion.kappa(Weighting::Unweighted),
        kappa_linear: confusion.kappa(Weighting::Linear),
        kappa_quadratic: confusion.kappa(Weighting::Quadratic),
        confusion,
        mean_signed_difference,
    })
}

fn check_rater(m: &RatingMatrix, rater: usize) -> Result<(), AgreementError> {
    if rater < m.n_raters() {
        Ok(())
    } else {
        Err(AgreementError::RaterOutOfRange { rater, n_raters: m.n_raters() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[Vec<Option<u32>>]) -> RatingMatrix {
        RatingMatrix::new(RatingMatrix::positional_categories(["none", "mild", "severe"]), rows)
            .expect("valid test matrix")
    }

    #[test]
    fn confusion_counts_items_both_rated() {
        let m = matrix(&[
            vec![Some(0), Some(0), Some(1)],
            vec![Some(1), Some(2), None],
            vec![None, Some(2), Some(2)],
            vec![Some(2), Some(2), Some(2)],
        ]);
        let confusion = confusion_matrix(&m, 0, 1).expect("raters exist");
        assert_eq!(confusion.n_items, 3);
        assert_eq!(confusion.counts, vec![vec![1, 0, 0], vec![0, 0, 1], vec![0, 0, 1]]);
        assert_eq!(confusion_matrix(&m, 0, 3), Err(AgreementError::RaterOutOfRange { rater: 3, n_raters: 3 }));
    }

    #[test]
    fn pairwise_matrix_is_symmetric_with_undefined_diagonal() {
        let m = matrix(&[
            vec![Some(0), Some(0), Some(1)],
            vec![Some(1), Some(1), Some(1)],
            vec![Some(2), Some(2), Some(0)],
            vec![Some(0), Some(1), Some(2)],
        ]);
        let kappas = pairwise_cohen(&m, Weighting::Unweighted);
        assert_eq!(kappas.len(), 3);
        for (a, row) in kappas.iter().enumerate() {
            assert!(row[a].is_err());
            for (b, kappa) in row.iter().enumerate() {
                assert_eq!(kappa, &kappas[b][a]);
            }
        }
        // Raters 0 and 1 agree on 3 of 4 items; rows (2, 1, 1), columns (1, 2, 1): pe = 5/16.
        let expected = (0.75 - 5.0 / 16.0) / (1.0 - 5.0 / 16.0);
        let kappa = kappas[0][1].clone().expect("defined");
        assert!((kappa - expected).abs() < 1e-15, "{kappa}");
    }

    #[test]
    fn reference_comparison_reports_tendency() {
        let m = matrix(&[vec![Some(1)], vec![Some(2)], vec![Some(2)], vec![None], vec![Some(0)]]);
        let reference = [Some(0), Some(2), Some(1), Some(1), None];
        let comparison = compare_with_reference(&m, 0, &reference).expect("valid reference");
        assert_eq!(comparison.confusion.n_items, 3);
        // Differences 1 − 0, 2 − 2 and 2 − 1: the rater grades higher by 2/3 of a step on average.
        let tendency = comparison.mean_signed_difference.expect("items compared");
        assert!((tendency - 2.0 / 3.0).abs() < 1e-15, "{tendency}");
        assert_eq!(comparison.confusion.counts, vec![vec![0, 0, 0], vec![1, 0, 0], vec![0, 1, 1]]);
    }

    #[test]
    fn reference_comparison_rejects_bad_labels() {
        let m = matrix(&[vec![Some(1)], vec![Some(2)]]);
        assert_eq!(
            compare_with_reference(&m, 0, &[Some(0)]),
            Err(AgreementError::ReferenceLength { found: 1, expected: 2 })
        );
        assert_eq!(
            compare_with_reference(&m, 0, &[Some(0), Some(3)]),
            Err(AgreementError::ReferenceCategoryOutOfRange { item: 1, index: 3, n_categories: 3 })
        );
        assert_eq!(
            compare_with_reference(&m, 1, &[None, None]),
            Err(AgreementError::RaterOutOfRange { rater: 1, n_raters: 1 })
        );
    }
}
