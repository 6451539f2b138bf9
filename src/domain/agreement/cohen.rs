//! Cohen's kappa for two raters, unweighted (Cohen 1960) and weighted (Cohen 1968).
//!
//! With C the confusion counts over the items both raters rated, n = ΣC, row sums a_i,
//! column sums b_j and disagreement weights d_ij, kappa = 1 − Σ d_ij C_ij / Σ d_ij a_i b_j / n.
//! This is scikit-learn's `cohen_kappa_score` (1.9.1). The weights use category **positions**
//! in the declared list: d = [i ≠ j] unweighted, |i − j| linear, (i − j)² quadratic. Declared
//! categories that no rater used still count. They shift positions, and so the weighted values,
//! but not the unweighted value.
//!
//! Items missing either rating are dropped (listwise deletion, as scikit-learn needs). When
//! the expected disagreement is 0, which happens only when both raters used one and the same
//! category, kappa is 0/0 and undefined.

use super::summary::Sums;
use super::{Undefined, Weighting};

pub(crate) fn kappa(sums: &Sums<'_>, weighting: Weighting) -> Result<f64, Undefined> {
    let n_raters = sums.n_raters();
    if n_raters != 2 {
        return Err(Undefined::new(format!("Cohen's kappa needs exactly two raters; this data has {n_raters}")));
    }
    let q = sums.n_categories();
    let mut counts = Vec::with_capacity(q * q);
    for a in 0..q {
        for b in 0..q {
            counts.push(sums.confusion(a, b).unwrap_or(0.0));
        }
    }
    kappa_from_confusion(&counts, q, weighting)
}

/// Disagreement weight between category positions `a` and `b`.
pub(crate) fn disagreement(a: usize, b: usize, weighting: Weighting) -> f64 {
    let distance = a.abs_diff(b) as f64;
    match weighting {
        Weighting::Unweighted => {
            if a == b {
                0.0
            } else {
                1.0
            }
        }
        Weighting::Linear => distance,
        Weighting::Quadratic => distance * distance,
    }
}

/// Kappa from q × q row-major confusion counts (rows: first rater, columns: second rater).
pub(crate) fn kappa_from_confusion(counts: &[f64], q: usize, weighting: Weighting) -> Result<f64, Undefined> {
    let n: f64 = counts.iter().sum();
    if n <= 0.0 {
        return Err(Undefined::new("no item was rated by both raters"));
    }
    let (rows, columns) = marginals(counts, q);

    let mut observed = 0.0;
    let mut expected = 0.0;
    for a in 0..q {
        for b in 0..q {
            let weight = disagreement(a, b, weighting);
            observed += weight * counts[a * q + b];
            expected += weight * rows[a] * columns[b];
        }
    }
    expected /= n;
    if expected > 0.0 {
        Ok(1.0 - observed / expected)
    } else {
        Err(Undefined::one_category_used("Cohen's kappa"))
    }
}

/// Row and column sums of q × q row-major counts.
pub(crate) fn marginals(counts: &[f64], q: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rows = vec![0.0; q];
    let mut columns = vec![0.0; q];
    for a in 0..q {
        for b in 0..q {
            rows[a] += counts[a * q + b];
            columns[b] += counts[a * q + b];
        }
    }
    (rows, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_of_hand_computed_table() {
        // 2 × 2 table [[20, 5], [10, 15]]: po = 0.7, pe = (25·30 + 25·20) / 50² = 0.5, kappa = 0.4.
        let counts = [20.0, 5.0, 10.0, 15.0];
        let kappa = kappa_from_confusion(&counts, 2, Weighting::Unweighted).expect("defined");
        assert!((kappa - 0.4).abs() < 1e-15, "{kappa}");
    }

    #[test]
    fn weighted_kappa_of_hand_computed_table() {
        // 3 × 3 table [[2, 1, 0], [0, 2, 1], [0, 0, 2]], n = 8; rows (3, 3, 2), columns (2, 3, 3).
        // Linear: observed Σ|i−j|C = 2; expected Σ|i−j| a_i b_j / n = (3·3 + 3·3·2 + 3·2 + 3·3 + 2·2·2 + 2·3) / 8 = 56 / 8.
        let counts = [2.0, 1.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 2.0];
        let linear = kappa_from_confusion(&counts, 3, Weighting::Linear).expect("defined");
        assert!((linear - (1.0 - 2.0 / 7.0)).abs() < 1e-15, "{linear}");
    }

    #[test]
    fn one_shared_category_is_undefined() {
        let counts = [0.0, 0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0];
        for weighting in [Weighting::Unweighted, Weighting::Linear, Weighting::Quadratic] {
            let error = kappa_from_confusion(&counts, 3, weighting).expect_err("0/0");
            assert!(error.reason.contains("only one category was used"), "{}", error.reason);
        }
    }

    #[test]
    fn empty_table_is_undefined() {
        let error = kappa_from_confusion(&[0.0; 4], 2, Weighting::Unweighted).expect_err("no items");
        assert_eq!(error.reason, "no item was rated by both raters");
    }
}
