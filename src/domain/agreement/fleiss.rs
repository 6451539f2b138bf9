//! Fleiss' kappa, Randolph's free-marginal kappa, Fleiss' kappa generalised to missing
//! ratings, and Conger's kappa.
//!
//! All four share the observed agreement pa: the share of agreeing ordered rater pairs
//! within an item, r_ik (r_ik − 1) summed over k and divided by m_i (m_i − 1), averaged over
//! items with m_i ≥ 2 ratings. They differ in chance agreement pe, and each is
//! (pa − pe) / (1 − pe):
//!
//! - Fleiss (1971), as statsmodels 0.15.0 `fleiss_kappa(method="fleiss")`: pe = Σ_k p_k² with
//!   p_k the share of all ratings in category k. It is defined only when every non-empty item
//!   has the same number m ≥ 2 of ratings. Items with no rating are dropped first. statsmodels
//!   does not drop them, so its caller must.
//! - Randolph (2005), statsmodels `method="randolph"`: pe = 1/q with q the number of declared
//!   categories.
//! - Generalised Fleiss, as irrCAC 0.4.4 `fleiss()` (Gwet 2014): pe = Σ_k π_k² where
//!   π_k averages the per-item shares r_ik / m_i over all non-empty items, single-rated items
//!   included. On complete data it equals Fleiss' kappa.
//! - Conger (1980), as irrCAC 0.4.4 `conger()`: with p_gk the share of rater g's ratings in
//!   category k, p̄_k their mean over the r raters and s²_k their sample variance,
//!   pe = Σ_k (p̄_k² − s²_k / r). A rater with no rating at all is left out of r here; irrCAC
//!   would divide by zero instead.

use super::summary::Sums;
use super::{chance_corrected, Undefined, Weighting};

/// Number of items and their common number of ratings, as Fleiss' kappa requires.
fn common_rating_count(sums: &Sums<'_>) -> Result<(f64, usize), Undefined> {
    let n_raters = sums.n_raters();
    if n_raters < 2 {
        return Err(Undefined::too_few_raters(n_raters));
    }
    let counts: Vec<usize> = (1..=n_raters).filter(|&m| sums.items_with_ratings(m) > 0.0).collect();
    match counts.as_slice() {
        [] => Err(Undefined::new("no item has a rating")),
        [1] => Err(Undefined::no_pairable_items()),
        [m] => Ok((sums.items_with_ratings(*m), *m)),
        _ => Err(Undefined::new(
            "Fleiss' kappa needs the same number of ratings on every item; use fleiss_kappa_generalized",
        )),
    }
}

pub(crate) fn fleiss_kappa(sums: &Sums<'_>) -> Result<f64, Undefined> {
    let (n_items, _) = common_rating_count(sums)?;
    let observed = sums.agreement_sum(Weighting::Unweighted)? / n_items;
    let q = sums.n_categories();
    let all_ratings: f64 = (0..q).map(|k| sums.total(k)).sum();
    let chance: f64 = (0..q).map(|k| (sums.total(k) / all_ratings).powi(2)).sum();
    chance_corrected(observed, chance, || Undefined::one_category_used("Fleiss' kappa"))
}

pub(crate) fn randolph_kappa(sums: &Sums<'_>) -> Result<f64, Undefined> {
    let (n_items, _) = common_rating_count(sums)?;
    let observed = sums.agreement_sum(Weighting::Unweighted)? / n_items;
    let chance = 1.0 / sums.n_categories() as f64;
    chance_corrected(observed, chance, || {
        Undefined::new("only one category is declared, so chance agreement is total and Randolph's kappa is undefined")
    })
}

/// Observed agreement pa over items with at least two ratings; fails without such items.
pub(crate) fn observed_agreement(sums: &Sums<'_>, weighting: Weighting) -> Result<f64, Undefined> {
    let n_raters = sums.n_raters();
    if n_raters < 2 {
        return Err(Undefined::too_few_raters(n_raters));
    }
    let pairable = sums.pairable_items();
    if pairable <= 0.0 {
        return Err(Undefined::no_pairable_items());
    }
    Ok(sums.agreement_sum(weighting)? / pairable)
}

/// irrCAC's category prevalence π_k: the per-item shares averaged over non-empty items.
pub(crate) fn prevalences(sums: &Sums<'_>) -> Vec<f64> {
    let rated = sums.rated_items();
    (0..sums.n_categories()).map(|k| sums.share_sum(k) / rated).collect()
}

pub(crate) fn generalized_kappa(sums: &Sums<'_>) -> Result<f64, Undefined> {
    let observed = observed_agreement(sums, Weighting::Unweighted)?;
    let chance: f64 = prevalences(sums).iter().map(|pi| pi * pi).sum();
    chance_corrected(observed, chance, || Undefined::one_category_used("Fleiss' kappa"))
}

pub(crate) fn conger_kappa(sums: &Sums<'_>) -> Result<f64, Undefined> {
    let observed = observed_agreement(sums, Weighting::Unweighted)?;
    let q = sums.n_categories();

    let mut rater_shares: Vec<Vec<f64>> = Vec::new();
    for rater in 0..sums.n_raters() {
        let n_ratings: f64 = (0..q).map(|k| sums.rater_count(rater, k)).sum();
        if n_ratings > 0.0 {
            rater_shares.push((0..q).map(|k| sums.rater_count(rater, k) / n_ratings).collect());
        }
    }
    let r = rater_shares.len();
    if r < 2 {
        return Err(Undefined::new(format!(
            "Conger's kappa needs ratings from at least two raters; {r} rater has any"
        )));
    }
    let r_f = r as f64;

    let mut chance = 0.0;
    for k in 0..q {
        let mean = rater_shares.iter().map(|shares| shares[k]).sum::<f64>() / r_f;
        let sum_of_squares: f64 = rater_shares.iter().map(|shares| shares[k] * shares[k]).sum();
        let variance = (sum_of_squares - r_f * mean * mean) / (r_f - 1.0);
        chance += mean * mean - variance / r_f;
    }
    chance_corrected(observed, chance, || Undefined::one_category_used("Conger's kappa"))
}
