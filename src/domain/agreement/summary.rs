//! Per-item sufficient statistics from which every coefficient is computed.
//!
//! Write r_ik for the number of ratings of item i in category k and m_i = Σ_k r_ik. Every
//! coefficient in this module is a function of these sums over the non-empty items:
//!
//! - the number of items with m_i = 1, 2, …, r (Fleiss needs one common m);
//! - Σ pa_i over items with m_i ≥ 2, where pa_i = Σ_k r_ik (Σ_l w_kl r_il − 1) / (m_i (m_i − 1))
//!   is the weighted share of agreeing ordered rater pairs (Gwet 2014), for identity,
//!   linear and quadratic value weights;
//! - Σ_i r_ik / m_i per category (irrCAC's category shares, averaged over non-empty items);
//! - Σ_i r_ik per category (statsmodels' Fleiss marginals);
//! - Krippendorff's coincidences o_ck = Σ_{i: m_i ≥ 2} r_ic (r_ik − δ_ck) / (m_i − 1);
//! - each rater's count per category (Conger's kappa);
//! - with exactly two raters, their confusion counts over items both rated (Cohen's kappa).
//!
//! A bootstrap replicate is the same sums with each item counted as often as it was drawn,
//! so [`Layout::emit`] produces one item's contribution as sparse (slot, value) pairs that can
//! be scaled and added.

use crate::domain::ratings::RatingMatrix;

use super::patterns::Patterns;
use super::{Undefined, Weighting};

/// Gwet's agreement weights by category value (irrCAC 0.4.4 `Weights`), q × q row-major.
#[derive(Debug, Clone)]
pub(crate) struct ValueWeights {
    /// 1 − |x_k − x_l| / (x_max − x_min).
    pub(crate) linear: Vec<f64>,
    /// 1 − ((x_k − x_l) / (x_max − x_min))².
    pub(crate) quadratic: Vec<f64>,
}

impl ValueWeights {
    fn new(values: &[f64]) -> Result<Self, Undefined> {
        if values.len() < 2 {
            return Err(Undefined::new("value weights need at least two declared categories"));
        }
        check_finite_values(values)?;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = max - min;
        if range <= 0.0 {
            return Err(Undefined::new(
                "all declared categories have the same value, so weights by value are undefined",
            ));
        }
        let q = values.len();
        let mut linear = Vec::with_capacity(q * q);
        let mut quadratic = Vec::with_capacity(q * q);
        for &a in values {
            for &b in values {
                let scaled = (a - b) / range;
                linear.push(1.0 - scaled.abs());
                quadratic.push(1.0 - scaled * scaled);
            }
        }
        Ok(Self { linear, quadratic })
    }
}

/// Fails when a declared category value is NaN or infinite.
pub(crate) fn check_finite_values(values: &[f64]) -> Result<(), Undefined> {
    match values.iter().position(|value| !value.is_finite()) {
        Some(k) => Err(Undefined::new(format!(
            "category {k} has the value {}, but value-based statistics need finite category values",
            values[k]
        ))),
        None => Ok(()),
    }
}

/// Offsets of each statistic in the flat vector of sums, and the category data they need.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    n_categories: usize,
    n_raters: usize,
    category_values: Vec<f64>,
    value_weights: Result<ValueWeights, Undefined>,
    has_confusion: bool,
    by_rating_count: usize,
    agreement: usize,
    shares: usize,
    totals: usize,
    coincidences: usize,
    rater_counts: usize,
    confusion: usize,
    len: usize,
}

/// Reusable buffers for [`Layout::emit`].
pub(crate) struct Scratch {
    counts: Vec<u32>,
    used: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(m: &RatingMatrix) -> Self {
        let q = m.n_categories();
        let r = m.n_raters();
        let category_values: Vec<f64> = m.categories().iter().map(|category| category.value).collect();
        let value_weights = ValueWeights::new(&category_values);
        let has_confusion = r == 2;

        let by_rating_count = 0;
        let agreement = by_rating_count + r;
        let shares = agreement + 3;
        let totals = shares + q;
        let coincidences = totals + q;
        let rater_counts = coincidences + q * q;
        let confusion = rater_counts + r * q;
        let len = confusion + if has_confusion { q * q } else { 0 };
        Self {
            n_categories: q,
            n_raters: r,
            category_values,
            value_weights,
            has_confusion,
            by_rating_count,
            agreement,
            shares,
            totals,
            coincidences,
            rater_counts,
            confusion,
            len,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn scratch(&self) -> Scratch {
        Scratch { counts: vec![0; self.n_categories], used: Vec::with_capacity(self.n_categories) }
    }

    /// Calls `emit(slot, value)` once per non-zero statistic that one item with `row` adds.
    pub(crate) fn emit(&self, row: &[Option<u32>], scratch: &mut Scratch, mut emit: impl FnMut(usize, f64)) {
        let q = self.n_categories;
        let Scratch { counts, used } = scratch;
        used.clear();
        let mut m = 0u32;
        for category in row.iter().flatten() {
            let k = *category as usize;
            if counts[k] == 0 {
                used.push(k);
            }
            counts[k] += 1;
            m += 1;
        }
        if m == 0 {
            return;
        }
        let m_f = f64::from(m);

        emit(self.by_rating_count + m as usize - 1, 1.0);
        for &k in used.iter() {
            let r_k = f64::from(counts[k]);
            emit(self.shares + k, r_k / m_f);
            emit(self.totals + k, r_k);
        }
        for (rater, category) in row.iter().enumerate() {
            if let Some(k) = category {
                emit(self.rater_counts + rater * q + *k as usize, 1.0);
            }
        }
        if self.has_confusion {
            if let [Some(a), Some(b)] = row {
                emit(self.confusion + *a as usize * q + *b as usize, 1.0);
            }
        }

        if m >= 2 {
            let ordered_pairs = m_f * (m_f - 1.0);
            let mut identity = 0.0;
            for &k in used.iter() {
                let r_k = f64::from(counts[k]);
                identity += r_k * (r_k - 1.0);
            }
            emit(self.agreement, identity / ordered_pairs);
            if let Ok(weights) = &self.value_weights {
                let mut linear = 0.0;
                let mut quadratic = 0.0;
                for &k in used.iter() {
                    let mut linear_star = 0.0;
                    let mut quadratic_star = 0.0;
                    for &l in used.iter() {
                        let r_l = f64::from(counts[l]);
                        linear_star += weights.linear[k * q + l] * r_l;
                        quadratic_star += weights.quadratic[k * q + l] * r_l;
                    }
                    let r_k = f64::from(counts[k]);
                    linear += r_k * (linear_star - 1.0);
                    quadratic += r_k * (quadratic_star - 1.0);
                }
                emit(self.agreement + 1, linear / ordered_pairs);
                emit(self.agreement + 2, quadratic / ordered_pairs);
            }

            let pairable = m_f - 1.0;
            for &c in used.iter() {
                let r_c = f64::from(counts[c]);
                for &k in used.iter() {
                    let r_k = f64::from(counts[k]) - if c == k { 1.0 } else { 0.0 };
                    if r_k > 0.0 {
                        emit(self.coincidences + c * q + k, r_c * r_k / pairable);
                    }
                }
            }
        }

        for &k in used.iter() {
            counts[k] = 0;
        }
    }
}

/// Read access to a vector of sums laid out by a [`Layout`].
#[derive(Clone, Copy)]
pub(crate) struct Sums<'a> {
    layout: &'a Layout,
    values: &'a [f64],
}

impl<'a> Sums<'a> {
    pub(crate) fn new(layout: &'a Layout, values: &'a [f64]) -> Self {
        debug_assert_eq!(values.len(), layout.len);
        Self { layout, values }
    }

    pub(crate) fn n_categories(&self) -> usize {
        self.layout.n_categories
    }

    pub(crate) fn n_raters(&self) -> usize {
        self.layout.n_raters
    }

    pub(crate) fn category_values(&self) -> &'a [f64] {
        &self.layout.category_values
    }

    pub(crate) fn value_weights(&self) -> Result<&'a ValueWeights, Undefined> {
        self.layout.value_weights.as_ref().map_err(Clone::clone)
    }

    /// Number of items with exactly `m` ratings, for 1 ≤ m ≤ number of raters.
    pub(crate) fn items_with_ratings(&self, m: usize) -> f64 {
        self.values[self.layout.by_rating_count + m - 1]
    }

    /// Number of items with at least one rating.
    pub(crate) fn rated_items(&self) -> f64 {
        (1..=self.n_raters()).map(|m| self.items_with_ratings(m)).sum()
    }

    /// Number of items with at least two ratings.
    pub(crate) fn pairable_items(&self) -> f64 {
        (2..=self.n_raters()).map(|m| self.items_with_ratings(m)).sum()
    }

    /// Σ pa_i over items with at least two ratings, with Gwet's weights by value.
    ///
    /// Fails for linear and quadratic weights when the category values do not define them.
    pub(crate) fn agreement_sum(&self, weighting: Weighting) -> Result<f64, Undefined> {
        let offset = match weighting {
            Weighting::Unweighted => 0,
            Weighting::Linear => 1,
            Weighting::Quadratic => 2,
        };
        if offset > 0 {
            self.value_weights()?;
        }
        Ok(self.values[self.layout.agreement + offset])
    }

    /// Σ_i r_ik / m_i over non-empty items.
    pub(crate) fn share_sum(&self, k: usize) -> f64 {
        self.values[self.layout.shares + k]
    }

    /// Σ_i r_ik: all ratings in category k.
    pub(crate) fn total(&self, k: usize) -> f64 {
        self.values[self.layout.totals + k]
    }

    /// Krippendorff's coincidence o_ck.
    pub(crate) fn coincidence(&self, c: usize, k: usize) -> f64 {
        self.values[self.layout.coincidences + c * self.layout.n_categories + k]
    }

    /// Number of ratings by `rater` in category k.
    pub(crate) fn rater_count(&self, rater: usize, k: usize) -> f64 {
        self.values[self.layout.rater_counts + rater * self.layout.n_categories + k]
    }

    /// With exactly two raters, the number of items rated a by the first and b by the second.
    pub(crate) fn confusion(&self, a: usize, b: usize) -> Option<f64> {
        self.layout.has_confusion.then(|| self.values[self.layout.confusion + a * self.layout.n_categories + b])
    }
}

/// The sums of a whole matrix, with the grouping of its items kept for the bootstrap.
pub(crate) struct Summary {
    layout: Layout,
    patterns: Patterns,
    values: Vec<f64>,
}

impl Summary {
    pub(crate) fn from_matrix(m: &RatingMatrix) -> Self {
        let layout = Layout::new(m);
        let patterns = Patterns::from_matrix(m);
        let mut values = vec![0.0; layout.len()];
        let mut scratch = layout.scratch();
        for (pattern, &count) in patterns.counts().iter().enumerate() {
            let weight = count as f64;
            layout.emit(patterns.row(pattern), &mut scratch, |slot, value| values[slot] += weight * value);
        }
        Self { layout, patterns, values }
    }

    pub(crate) fn sums(&self) -> Sums<'_> {
        Sums::new(&self.layout, &self.values)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn patterns(&self) -> &Patterns {
        &self.patterns
    }
}
