//! Analytic standard errors, for Wald intervals and z tests next to the bootstrap.
//!
//! - Cohen's kappa, all weightings: the large-sample variance of Fleiss, Cohen & Everitt (1969),
//!   not assuming kappa = 0. With agreement weights w_ij (1 − disagreement / max disagreement),
//!   cell shares p_ij, marginals p_i. and p_.j, w̄_i. = Σ_j p_.j w_ij and w̄_.j = Σ_i p_i. w_ij:
//!   var = [Σ_ij p_ij (w_ij − (w̄_i. + w̄_.j)(1 − κ))² − (κ − pe (1 − κ))²] / (n (1 − pe)²).
//! - Fleiss' kappa under the null hypothesis kappa = 0 (Fleiss, Nee & Landis 1979), for a z test
//!   only: var₀ = 2 / (N m (m − 1)) · [(Σ_j p_j q_j)² − Σ_j p_j q_j (q_j − p_j)] / (Σ_j p_j q_j)²,
//!   with N items, m ratings per item and q_j = 1 − p_j.
//! - Generalised Fleiss, Gwet's AC1 and AC2, and Brennan-Prediger: Gwet's linearisation
//!   (Gwet 2008, 2014) as irrCAC 0.4.4 computes it for an infinite item population.
//!   With n non-empty items and n₂ of them with two or more ratings, each item i gets
//!   κ_i = (n / n₂)(pa_i − pe·[m_i ≥ 2]) / (1 − pe) and κ*_i = κ_i − 2(1 − κ)(pe_i − pe) / (1 − pe),
//!   and var = Σ_i (κ*_i − κ)² / (n (n − 1)). The per-item chance term pe_i is
//!   Σ_k r_ik π^w_k / m_i for Fleiss (π^w = W π for symmetric W),
//!   T_w / (q (q − 1)) · Σ_k r_ik (1 − π_k) / m_i for Gwet, and pe itself for Brennan-Prediger.
//!   On complete data generalised Fleiss is Fleiss' kappa, so its standard error is reported
//!   under `fleiss_kappa` too.
//!
//! Krippendorff's alpha, Conger's kappa and percent agreement get no analytic standard error
//! here; use the bootstrap for them.

use crate::domain::ratings::RatingMatrix;

use super::cohen::{disagreement, marginals};
use super::fleiss::{observed_agreement, prevalences};
use super::gwet::{brennan_prediger_chance, gwet_chance, weight_total};
use super::summary::Summary;
use super::{evaluate, AgreementReport, Metric, Undefined, Weighting};

/// Computes the standard errors of the metrics listed in the module documentation, by metric
/// name, each with a value or the reason it has none.
pub fn standard_errors(m: &RatingMatrix) -> AgreementReport {
    let summary = Summary::from_matrix(m);
    let mut report = AgreementReport::default();
    for (metric, weighting) in [
        (Metric::CohenKappa, Weighting::Unweighted),
        (Metric::CohenKappaLinear, Weighting::Linear),
        (Metric::CohenKappaQuadratic, Weighting::Quadratic),
    ] {
        report.insert(metric.name(), cohen_from_summary(&summary, weighting));
    }
    for metric in [
        Metric::FleissKappa,
        Metric::FleissKappaGeneralized,
        Metric::GwetAc1,
        Metric::GwetAc2Linear,
        Metric::GwetAc2Quadratic,
        Metric::BrennanPrediger,
    ] {
        report.insert(metric.name(), linearized_from_summary(&summary, metric));
    }
    report
}

/// Large-sample standard error of Cohen's kappa (Fleiss, Cohen & Everitt 1969).
pub fn cohen_kappa_standard_error(m: &RatingMatrix, weighting: Weighting) -> Result<f64, Undefined> {
    cohen_from_summary(&Summary::from_matrix(m), weighting)
}

/// Standard error of Fleiss' kappa under the null hypothesis kappa = 0 (Fleiss, Nee & Landis 1979).
pub fn fleiss_kappa_null_standard_error(m: &RatingMatrix) -> Result<f64, Undefined> {
    let summary = Summary::from_matrix(m);
    let sums = summary.sums();
    evaluate(Metric::FleissKappa, &sums)?;

    let (n_items, m_ratings) = (1..=sums.n_raters())
        .find(|&count| sums.items_with_ratings(count) > 0.0)
        .map(|count| (sums.items_with_ratings(count), count as f64))
        .ok_or_else(|| Undefined::new("no item has a rating"))?;
    let q = sums.n_categories();
    let all_ratings: f64 = (0..q).map(|k| sums.total(k)).sum();
    let mut spread = 0.0;
    let mut skew = 0.0;
    for k in 0..q {
        let p = sums.total(k) / all_ratings;
        spread += p * (1.0 - p);
        skew += p * (1.0 - p) * (1.0 - 2.0 * p);
    }
    let variance = 2.0 / (n_items * m_ratings * (m_ratings - 1.0)) * (spread * spread - skew) / (spread * spread);
    finite_root(variance)
}

/// Gwet's linearised standard error of `metric`, one of generalised or complete-data Fleiss,
/// Gwet's AC1 and AC2, and Brennan-Prediger.
pub fn linearized_standard_error(m: &RatingMatrix, metric: Metric) -> Result<f64, Undefined> {
    linearized_from_summary(&Summary::from_matrix(m), metric)
}

fn cohen_from_summary(summary: &Summary, weighting: Weighting) -> Result<f64, Undefined> {
    let sums = summary.sums();
    let metric = match weighting {
        Weighting::Unweighted => Metric::CohenKappa,
        Weighting::Linear => Metric::CohenKappaLinear,
        Weighting::Quadratic => Metric::CohenKappaQuadratic,
    };
    let kappa = evaluate(metric, &sums)?;

    let q = sums.n_categories();
    let mut shares = Vec::with_capacity(q * q);
    for a in 0..q {
        for b in 0..q {
            shares.push(sums.confusion(a, b).unwrap_or(0.0));
        }
    }
    let n: f64 = shares.iter().sum();
    shares.iter_mut().for_each(|share| *share /= n);
    let (rows, columns) = marginals(&shares, q);

    let max_disagreement = disagreement(0, q - 1, weighting);
    let weight = |a: usize, b: usize| 1.0 - disagreement(a, b, weighting) / max_disagreement;
    let mut chance = 0.0;
    let mut row_means = vec![0.0; q];
    let mut column_means = vec![0.0; q];
    for a in 0..q {
        for b in 0..q {
            chance += weight(a, b) * rows[a] * columns[b];
            row_means[a] += columns[b] * weight(a, b);
            column_means[b] += rows[a] * weight(a, b);
        }
    }

    let mut spread = 0.0;
    for a in 0..q {
        for b in 0..q {
            let deviation = weight(a, b) - (row_means[a] + column_means[b]) * (1.0 - kappa);
            spread += shares[a * q + b] * deviation * deviation;
        }
    }
    let correction = kappa - chance * (1.0 - kappa);
    let variance = (spread - correction * correction) / (n * (1.0 - chance).powi(2));
    finite_root(variance)
}

/// Per-item chance agreement pe_i of the linearisation.
enum ItemChance {
    /// Σ_k r_ik c_k / m_i with one coefficient c_k per category.
    PerCategory(Vec<f64>),
    /// The constant pe (Brennan-Prediger).
    Constant,
}

fn linearized_from_summary(summary: &Summary, metric: Metric) -> Result<f64, Undefined> {
    let sums = summary.sums();
    let kappa = evaluate(metric, &sums)?;
    let weighting = match metric {
        Metric::FleissKappa | Metric::FleissKappaGeneralized | Metric::GwetAc1 | Metric::BrennanPrediger => {
            Weighting::Unweighted
        }
        Metric::GwetAc2Linear => Weighting::Linear,
        Metric::GwetAc2Quadratic => Weighting::Quadratic,
        other => {
            return Err(Undefined::new(format!("{} has no linearised standard error here", other.name())));
        }
    };
    let q = sums.n_categories();
    if q < 2 {
        return Err(Undefined::new("a standard error needs at least two declared categories"));
    }
    observed_agreement(&sums, weighting)?;
    let pi = prevalences(&sums);

    let (chance, item_chance) = match metric {
        Metric::FleissKappa | Metric::FleissKappaGeneralized => {
            let chance: f64 = pi.iter().map(|p| p * p).sum();
            (chance, ItemChance::PerCategory(pi.clone()))
        }
        Metric::BrennanPrediger => (brennan_prediger_chance(&sums), ItemChance::Constant),
        _ => {
            let chance = gwet_chance(&sums, weighting)?
                .ok_or_else(|| Undefined::new("a standard error needs at least two declared categories"))?;
            let scale = weight_total(&sums, weighting)? / (q as f64 * (q as f64 - 1.0));
            (chance, ItemChance::PerCategory(pi.iter().map(|p| scale * (1.0 - p)).collect()))
        }
    };

    let rated = sums.rated_items();
    let pairable = sums.pairable_items();
    if rated < 2.0 {
        return Err(Undefined::new("a standard error needs at least two rated items"));
    }
    let weights = match weighting {
        Weighting::Unweighted => None,
        Weighting::Linear => Some(&sums.value_weights()?.linear),
        Weighting::Quadratic => Some(&sums.value_weights()?.quadratic),
    };

    let patterns = summary.patterns();
    let mut counts = vec![0.0; q];
    let mut squares = 0.0;
    for (pattern, &multiplicity) in patterns.counts().iter().enumerate() {
        counts.iter_mut().for_each(|count| *count = 0.0);
        for category in patterns.row(pattern).iter().flatten() {
            counts[*category as usize] += 1.0;
        }
        let m_i: f64 = counts.iter().sum();
        let item_agreement = if m_i >= 2.0 { weighted_pairs(&counts, weights) / (m_i * (m_i - 1.0)) } else { 0.0 };
        let chance_if_pairable = if m_i >= 2.0 { chance } else { 0.0 };
        let kappa_i = (rated / pairable) * (item_agreement - chance_if_pairable) / (1.0 - chance);
        let kappa_star = match &item_chance {
            ItemChance::PerCategory(coefficients) => {
                let chance_i = counts.iter().zip(coefficients).map(|(r, c)| r * c).sum::<f64>() / m_i;
                kappa_i - 2.0 * (1.0 - kappa) * (chance_i - chance) / (1.0 - chance)
            }
            ItemChance::Constant => kappa_i,
        };
        squares += multiplicity as f64 * (kappa_star - kappa).powi(2);
    }
    finite_root(squares / (rated * (rated - 1.0)))
}

/// Σ_k r_k (Σ_l w_kl r_l − 1), with identity weights when `weights` is `None`.
fn weighted_pairs(counts: &[f64], weights: Option<&Vec<f64>>) -> f64 {
    let q = counts.len();
    let mut total = 0.0;
    for k in 0..q {
        let star = match weights {
            None => counts[k],
            Some(weights) => (0..q).map(|l| weights[k * q + l] * counts[l]).sum(),
        };
        total += counts[k] * (star - 1.0);
    }
    total
}

/// Square root of a variance; rounding can leave an exact zero slightly negative.
fn finite_root(variance: f64) -> Result<f64, Undefined> {
    if variance.is_finite() && variance > -1e-15 {
        Ok(variance.max(0.0).sqrt())
    } else {
        Err(Undefined::new("the variance estimate is negative or not finite"))
    }
}
