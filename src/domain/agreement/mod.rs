//! Inter-rater agreement coefficients over a [`RatingMatrix`], with bootstrap confidence
//! intervals, analytic standard errors and per-rater breakdowns.
//!
//! Every coefficient is a function of a few sums over items (see `summary`). The matrix is read
//! once, items with identical rows are grouped, and each coefficient then costs
//! O(categories² + raters × categories). The bootstrap reuses the same sums.
//!
//! | metric | definition | reference implementation matched |
//! | --- | --- | --- |
//! | `percent_agreement` | share of agreeing rater pairs per item, averaged over items with ≥ 2 ratings | irrCAC 0.4.4 |
//! | `cohen_kappa{,_linear,_quadratic}` | Cohen (1960, 1968), weights by category position | scikit-learn 1.9.1 |
//! | `fleiss_kappa`, `fleiss_kappa_randolph` | Fleiss (1971); Randolph (2005) free-marginal | statsmodels 0.15.0 |
//! | `fleiss_kappa_generalized` | Fleiss (1971) with missing ratings, Gwet (2014) | irrCAC 0.4.4 |
//! | `conger_kappa` | Conger (1980) | irrCAC 0.4.4 |
//! | `krippendorff_alpha_{nominal,ordinal,interval,ratio}` | Krippendorff (2011) | krippendorff 0.9.0 |
//! | `gwet_ac1`, `gwet_ac2_{linear,quadratic}` | Gwet (2008, 2014), weights by category value | irrCAC 0.4.4 |
//! | `brennan_prediger` | Brennan & Prediger (1981) | irrCAC 0.4.4 |
//!
//! Conventions where sources differ:
//! - Declared categories count even when no rater used them. That changes Randolph,
//!   Brennan-Prediger and Gwet (through the number of categories q) and Cohen's weights
//!   (through positions). R's `irr::kappa2` uses only the observed levels instead.
//! - Items with no rating are dropped before anything else, as irrCAC does.
//! - A coefficient whose chance agreement is total (for example only one category used) is
//!   undefined with a reason, never NaN, infinite or a made-up 0 or 1. The one exception is
//!   irrCAC's: with a single declared category, Gwet's AC1 and Brennan-Prediger are 1,
//!   because every pair of ratings necessarily agrees.

mod bootstrap;
mod cohen;
mod fleiss;
mod gwet;
mod krippendorff;
mod pairwise;
mod patterns;
mod standard_error;
mod summary;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::ratings::RatingMatrix;

pub use bootstrap::{bootstrap, DEFAULT_REPLICATES, MIN_DEFINED_SHARE};
pub use pairwise::{compare_with_reference, confusion_matrix, pairwise_cohen, ConfusionMatrix, ReferenceComparison};
pub use standard_error::{
    cohen_kappa_standard_error, fleiss_kappa_null_standard_error, linearized_standard_error, standard_errors,
};

use summary::{Summary, Sums};

/// The reason a coefficient has no value on some data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{reason}")]
pub struct Undefined {
    pub reason: String,
}

impl Undefined {
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }

    pub(crate) fn too_few_raters(n_raters: usize) -> Self {
        Self::new(format!("agreement needs at least two raters; this data has {n_raters}"))
    }

    pub(crate) fn no_pairable_items() -> Self {
        Self::new("no item has two ratings")
    }

    pub(crate) fn one_category_used(coefficient: &str) -> Self {
        Self::new(format!("only one category was used, so chance agreement is total and {coefficient} is undefined"))
    }
}

/// Invalid arguments to the breakdown helpers (rater indices and reference labels).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    #[error("rater {rater} does not exist; the matrix has {n_raters} raters")]
    RaterOutOfRange { rater: usize, n_raters: usize },
    #[error("the reference has {found} labels but the matrix has {expected} items; give one label (or none) per item")]
    ReferenceLength { found: usize, expected: usize },
    #[error("reference label {index} at item {item} is not a declared category (0..{n_categories})")]
    ReferenceCategoryOutOfRange { item: usize, index: usize, n_categories: usize },
}

/// Weighting of disagreements between categories.
///
/// Cohen's kappa places categories by position in the declared list, as scikit-learn does.
/// Gwet's AC2 places them by their numeric value, as irrCAC does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    Unweighted,
    Linear,
    Quadratic,
}

/// Krippendorff's level of measurement, which chooses the distance between two categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 0 for equal categories, 1 otherwise.
    Nominal,
    /// Squared count of pairable ratings between the two categories, from the coincidence marginals.
    Ordinal,
    /// Squared difference of the category values.
    Interval,
    /// ((a − b) / (a + b))², taken as 0 when a + b = 0.
    Ratio,
}

/// One agreement coefficient; [`Metric::name`] is its key in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    PercentAgreement,
    CohenKappa,
    CohenKappaLinear,
    CohenKappaQuadratic,
    FleissKappa,
    FleissKappaRandolph,
    FleissKappaGeneralized,
    KrippendorffAlphaNominal,
    KrippendorffAlphaOrdinal,
    KrippendorffAlphaInterval,
    KrippendorffAlphaRatio,
    GwetAc1,
    GwetAc2Linear,
    GwetAc2Quadratic,
    BrennanPrediger,
    CongerKappa,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::PercentAgreement,
        Metric::CohenKappa,
        Metric::CohenKappaLinear,
        Metric::CohenKappaQuadratic,
        Metric::FleissKappa,
        Metric::FleissKappaRandolph,
        Metric::FleissKappaGeneralized,
        Metric::KrippendorffAlphaNominal,
        Metric::KrippendorffAlphaOrdinal,
        Metric::KrippendorffAlphaInterval,
        Metric::KrippendorffAlphaRatio,
        Metric::GwetAc1,
        Metric::GwetAc2Linear,
        Metric::GwetAc2Quadratic,
        Metric::BrennanPrediger,
        Metric::CongerKappa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::PercentAgreement => "percent_agreement",
            Metric::CohenKappa => "cohen_kappa",
            Metric::CohenKappaLinear => "cohen_kappa_linear",
            Metric::CohenKappaQuadratic => "cohen_kappa_quadratic",
            Metric::FleissKappa => "fleiss_kappa",
            Metric::FleissKappaRandolph => "fleiss_kappa_randolph",
            Metric::FleissKappaGeneralized => "fleiss_kappa_generalized",
            Metric::KrippendorffAlphaNominal => "krippendorff_alpha_nominal",
            Metric::KrippendorffAlphaOrdinal => "krippendorff_alpha_ordinal",
            Metric::KrippendorffAlphaInterval => "krippendorff_alpha_interval",
            Metric::KrippendorffAlphaRatio => "krippendorff_alpha_ratio",
            Metric::GwetAc1 => "gwet_ac1",
            Metric::GwetAc2Linear => "gwet_ac2_linear",
            Metric::GwetAc2Quadratic => "gwet_ac2_quadratic",
            Metric::BrennanPrediger => "brennan_prediger",
            Metric::CongerKappa => "conger_kappa",
        }
    }

    /// Returns the metric whose [`Metric::name`] is `name`, if any.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.name() == name)
    }
}

/// Every coefficient of one matrix: each metric name is in exactly one of the two maps.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgreementReport {
    /// Finite coefficient values by metric name.
    pub values: BTreeMap<String, f64>,
    /// Plain-English reasons by metric name, for the coefficients that have no value.
    pub undefined: BTreeMap<String, String>,
}

impl AgreementReport {
    /// Records `result` under `name`, in `values` or in `undefined`.
    pub fn insert(&mut self, name: &str, result: Result<f64, Undefined>) {
        match result {
            Ok(value) => {
                self.undefined.remove(name);
                self.values.insert(name.to_owned(), value);
            }
            Err(undefined) => {
                self.values.remove(name);
                self.undefined.insert(name.to_owned(), undefined.reason);
            }
        }
    }

    /// Returns the value or the reason recorded under `name`. A name never recorded is undefined too.
    pub fn get(&self, name: &str) -> Result<f64, Undefined> {
        if let Some(value) = self.values.get(name) {
            return Ok(*value);
        }
        match self.undefined.get(name) {
            Some(reason) => Err(Undefined::new(reason.clone())),
            None => Err(Undefined::new(format!("{name} was not computed"))),
        }
    }
}

/// Computes every metric in [`Metric::ALL`] from one pass over the matrix.
pub fn compute_all(m: &RatingMatrix) -> AgreementReport {
    let summary = Summary::from_matrix(m);
    let sums = summary.sums();
    let mut report = AgreementReport::default();
    for metric in Metric::ALL {
        report.insert(metric.name(), evaluate(metric, &sums));
    }
    report
}

/// Computes one metric.
pub fn compute(m: &RatingMatrix, metric: Metric) -> Result<f64, Undefined> {
    let summary = Summary::from_matrix(m);
    evaluate(metric, &summary.sums())
}

/// Share of agreeing rater pairs within each item, averaged over items with at least two ratings.
pub fn percent_agreement(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::PercentAgreement)
}

/// Cohen's kappa between the two raters of a two-column matrix; items missing either rating are dropped.
pub fn cohen_kappa(m: &RatingMatrix, weighting: Weighting) -> Result<f64, Undefined> {
    let metric = match weighting {
        Weighting::Unweighted => Metric::CohenKappa,
        Weighting::Linear => Metric::CohenKappaLinear,
        Weighting::Quadratic => Metric::CohenKappaQuadratic,
    };
    compute(m, metric)
}

/// Fleiss' kappa; needs the same number of ratings on every non-empty item.
pub fn fleiss_kappa(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::FleissKappa)
}

/// Randolph's free-marginal kappa (chance agreement 1/q); same data rules as [`fleiss_kappa`].
pub fn fleiss_kappa_randolph(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::FleissKappaRandolph)
}

/// Fleiss' kappa generalised to missing ratings as irrCAC computes it.
pub fn fleiss_kappa_generalized(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::FleissKappaGeneralized)
}

/// Conger's kappa: chance agreement from each rater's own category distribution.
pub fn conger_kappa(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::CongerKappa)
}

/// Krippendorff's alpha at the given level of measurement.
pub fn krippendorff_alpha(m: &RatingMatrix, level: Level) -> Result<f64, Undefined> {
    let metric = match level {
        Level::Nominal => Metric::KrippendorffAlphaNominal,
        Level::Ordinal => Metric::KrippendorffAlphaOrdinal,
        Level::Interval => Metric::KrippendorffAlphaInterval,
        Level::Ratio => Metric::KrippendorffAlphaRatio,
    };
    compute(m, metric)
}

/// Gwet's AC1 (unweighted).
pub fn gwet_ac1(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::GwetAc1)
}

/// Gwet's AC2 with weights by category value; `Weighting::Unweighted` gives AC1.
pub fn gwet_ac2(m: &RatingMatrix, weighting: Weighting) -> Result<f64, Undefined> {
    let metric = match weighting {
        Weighting::Unweighted => Metric::GwetAc1,
        Weighting::Linear => Metric::GwetAc2Linear,
        Weighting::Quadratic => Metric::GwetAc2Quadratic,
    };
    compute(m, metric)
}

/// Brennan and Prediger's coefficient (chance agreement 1/q).
pub fn brennan_prediger(m: &RatingMatrix) -> Result<f64, Undefined> {
    compute(m, Metric::BrennanPrediger)
}

/// Evaluates one metric from the per-item sums.
fn evaluate(metric: Metric, sums: &Sums<'_>) -> Result<f64, Undefined> {
    let value = match metric {
        Metric::PercentAgreement => gwet::percent_agreement(sums),
        Metric::CohenKappa => cohen::kappa(sums, Weighting::Unweighted),
        Metric::CohenKappaLinear => cohen::kappa(sums, Weighting::Linear),
        Metric::CohenKappaQuadratic => cohen::kappa(sums, Weighting::Quadratic),
        Metric::FleissKappa => fleiss::fleiss_kappa(sums),
        Metric::FleissKappaRandolph => fleiss::randolph_kappa(sums),
        Metric::FleissKappaGeneralized => fleiss::generalized_kappa(sums),
        Metric::KrippendorffAlphaNominal => krippendorff::alpha(sums, Level::Nominal),
        Metric::KrippendorffAlphaOrdinal => krippendorff::alpha(sums, Level::Ordinal),
        Metric::KrippendorffAlphaInterval => krippendorff::alpha(sums, Level::Interval),
        Metric::KrippendorffAlphaRatio => krippendorff::alpha(sums, Level::Ratio),
        Metric::GwetAc1 => gwet::gwet_ac(sums, Weighting::Unweighted),
        Metric::GwetAc2Linear => gwet::gwet_ac(sums, Weighting::Linear),
        Metric::GwetAc2Quadratic => gwet::gwet_ac(sums, Weighting::Quadratic),
        Metric::BrennanPrediger => gwet::brennan_prediger(sums),
        Metric::CongerKappa => fleiss::conger_kappa(sums),
    }?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Undefined::new(format!("{} overflowed to a non-finite value", metric.name())))
    }
}

/// Smallest 1 − chance agreement treated as non-zero; below it the coefficient is 0/0.
///
/// Real data stays far above it: with one rating outside the main category among a million
/// ratings, Fleiss' 1 − chance is still about 2e-6.
const DEGENERATE_DENOMINATOR: f64 = 1e-12;

/// (observed − chance) / (1 − chance), or `degenerate` when chance agreement is (nearly) total.
fn chance_corrected(observed: f64, chance: f64, degenerate: impl FnOnce() -> Undefined) -> Result<f64, Undefined> {
    let denominator = 1.0 - chance;
    if denominator > DEGENERATE_DENOMINATOR {
        Ok((observed - chance) / denominator)
    } else {
        Err(degenerate())
    }
}

#[cfg(test)]
mod tests;
