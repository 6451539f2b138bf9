//! Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
//!
//! Only items with at least two ratings are pairable. From the coincidences
//! o_ck = Σ_i r_ic (r_ik − δ_ck) / (m_i − 1), their marginals n_c = Σ_k o_ck and n = Σ_c n_c,
//!
//!   alpha = 1 − (n − 1) · Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck
//!
//! with the distance δ² of the level of measurement:
//!
//! - nominal: 1 when c ≠ k;
//! - ordinal: (Σ_{g between c and k} n_g − (n_c + n_k) / 2)², from category **positions** and the
//!   observed marginals, so it changes with how often each category was used;
//! - interval: (x_c − x_k)² of the category values;
//! - ratio: ((x_c − x_k) / (x_c + x_k))², taken as 0 when x_c + x_k = 0.
//!
//! This matches the `krippendorff` Python package 0.9.0 given the declared categories as
//! `value_domain`, which also refuses fewer than two declared categories. Alpha is undefined
//! when the expected disagreement is 0, for example when only one category was used.

use super::summary::{check_finite_values, Sums};
use super::{Level, Undefined};

pub(crate) fn alpha(sums: &Sums<'_>, level: Level) -> Result<f64, Undefined> {
    let q = sums.n_categories();
    if q < 2 {
        return Err(Undefined::new("Krippendorff's alpha needs at least two declared categories"));
    }
    let n_raters = sums.n_raters();
    if n_raters < 2 {
        return Err(Undefined::too_few_raters(n_raters));
    }
    if sums.pairable_items() <= 0.0 {
        return Err(Undefined::no_pairable_items());
    }
    if matches!(level, Level::Interval | Level::Ratio) {
        check_finite_values(sums.category_values())?;
    }

    let marginals: Vec<f64> = (0..q).map(|c| (0..q).map(|k| sums.coincidence(c, k)).sum()).collect();
    let n: f64 = marginals.iter().sum();
    let distance = Distance::new(level, sums.category_values(), &marginals);

    let mut observed = 0.0;
    let mut expected = 0.0;
    for c in 0..q {
        for k in 0..q {
            if c == k {
                continue;
            }
            let d = distance.get(c, k);
            observed += sums.coincidence(c, k) * d;
            expected += marginals[c] * marginals[k] * d;
        }
    }
    if expected > 0.0 {
        Ok(1.0 - (n - 1.0) * observed / expected)
    } else if marginals.iter().filter(|&&n_c| n_c > 0.0).count() == 1 {
        Err(Undefined::new(
            "only one category was used, so expected disagreement is 0 and Krippendorff's alpha is undefined",
        ))
    } else {
        Err(Undefined::new(
            "the categories used are at distance 0 from each other, so expected disagreement is 0 and Krippendorff's alpha is undefined",
        ))
    }
}

/// Squared distance between two categories at one level of measurement.
enum Distance<'a> {
    Nominal,
    /// Cumulative marginals: `cumulative[g]` = n_0 + … + n_{g−1}.
    Ordinal {
        marginals: &'a [f64],
        cumulative: Vec<f64>,
    },
    Interval(&'a [f64]),
    Ratio(&'a [f64]),
}

impl<'a> Distance<'a> {
    fn new(level: Level, values: &'a [f64], marginals: &'a [f64]) -> Self {
        match level {
            Level::Nominal => Distance::Nominal,
            Level::Ordinal => {
                let mut cumulative = Vec::with_capacity(marginals.len() + 1);
                let mut running = 0.0;
                cumulative.push(running);
                for n_g in marginals {
                    running += n_g;
                    cumulative.push(running);
                }
                Distance::Ordinal { marginals, cumulative }
            }
            Level::Interval => Distance::Interval(values),
            Level::Ratio => Distance::Ratio(values),
        }
    }

    fn get(&self, c: usize, k: usize) -> f64 {
        match self {
            Distance::Nominal => {
                if c == k {
                    0.0
                } else {
                    1.0
                }
            }
            Distance::Ordinal { marginals, cumulative } => {
                let (low, high) = if c <= k { (c, k) } else { (k, c) };
                let between = cumulative[high + 1] - cumulative[low] - (marginals[c] + marginals[k]) / 2.0;
                between * between
            }
            Distance::Interval(values) => {
                let difference = values[c] - values[k];
                difference * difference
            }
            Distance::Ratio(values) => {
                let total = values[c] + values[k];
                if total == 0.0 {
                    0.0
                } else {
                    let ratio = (values[c] - values[k]) / total;
                    ratio * ratio
                }
            }
        }
    }
}
