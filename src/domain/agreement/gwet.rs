//! Percent agreement, Gwet's AC1 and AC2, and Brennan and Prediger's coefficient.
//!
//! All follow Gwet (2014, *Handbook of Inter-Rater Reliability*) as irrCAC 0.4.4 implements it
//! for raw ratings with missing values:
//!
//! - pa = mean over items with m_i ≥ 2 ratings of Σ_k r_ik (r*_ik − 1) / (m_i (m_i − 1)), where
//!   r*_ik = Σ_l w_kl r_il. With identity weights this is percent agreement.
//! - π_k = per-item share r_ik / m_i averaged over all non-empty items, single-rated items
//!   included.
//! - Gwet (2008): pe = T_w / (q (q − 1)) · Σ_k π_k (1 − π_k), where T_w = Σ_kl w_kl and q is the
//!   number of declared categories.
//! - Brennan and Prediger (1981): pe = T_w / q², which is 1/q unweighted.
//!
//! AC2 weights use category **values**: 1 − |x_k − x_l| / (x_max − x_min) linear and
//! 1 − ((x_k − x_l) / (x_max − x_min))² quadratic. For equally spaced values they equal the
//! position-based weights.
//!
//! With a single declared category irrCAC reports AC1 and Brennan-Prediger as 1 (it replaces
//! pe by 1 − 1e-15 and 1e-15), and every pair of ratings then agrees, so these return 1 too.
//! AC2 stays undefined there because its weights divide by x_max − x_min = 0.

use super::fleiss::{observed_agreement, prevalences};
use super::summary::Sums;
use super::{chance_corrected, Undefined, Weighting};

pub(crate) fn percent_agreement(sums: &Sums<'_>) -> Result<f64, Undefined> {
    observed_agreement(sums, Weighting::Unweighted)
}

/// Sum T_w of all q² agreement weights.
pub(crate) fn weight_total(sums: &Sums<'_>, weighting: Weighting) -> Result<f64, Undefined> {
    Ok(match weighting {
        Weighting::Unweighted => sums.n_categories() as f64,
        Weighting::Linear => sums.value_weights()?.linear.iter().sum(),
        Weighting::Quadratic => sums.value_weights()?.quadratic.iter().sum(),
    })
}

/// Gwet's chance agreement for the given weights; `None` when only one category is declared.
pub(crate) fn gwet_chance(sums: &Sums<'_>, weighting: Weighting) -> Result<Option<f64>, Undefined> {
    let q = sums.n_categories();
    let weights = weight_total(sums, weighting)?;
    if q < 2 {
        return Ok(None);
    }
    let spread: f64 = prevalences(sums).iter().map(|pi| pi * (1.0 - pi)).sum();
    let q = q as f64;
    Ok(Some(weights / (q * (q - 1.0)) * spread))
}

pub(crate) fn gwet_ac(sums: &Sums<'_>, weighting: Weighting) -> Result<f64, Undefined> {
    let observed = observed_agreement(sums, weighting)?;
    match gwet_chance(sums, weighting)? {
        Some(chance) => chance_corrected(observed, chance, || {
            Undefined::new("chance agreement is total, so Gwet's coefficient is undefined")
        }),
        None => Ok(1.0),
    }
}

/// Brennan and Prediger's chance agreement T_w / q² (unweighted: 1/q).
pub(crate) fn brennan_prediger_chance(sums: &Sums<'_>) -> f64 {
    1.0 / sums.n_categories() as f64
}

pub(crate) fn brennan_prediger(sums: &Sums<'_>) -> Result<f64, Undefined> {
    let observed = observed_agreement(sums, Weighting::Unweighted)?;
    if sums.n_categories() < 2 {
        return Ok(1.0);
    }
    chance_corrected(observed, brennan_prediger_chance(sums), || {
        Undefined::new("chance agreement is total, so Brennan-Prediger is undefined")
    })
}
