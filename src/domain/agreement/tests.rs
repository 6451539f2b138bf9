//! Hand-computed cases, undefined cases and bootstrap properties.

use super::*;
use crate::domain::ratings::{Category, RatingMatrix};

fn positional(n_categories: usize, rows: &[Vec<Option<u32>>]) -> RatingMatrix {
    let labels = (0..n_categories).map(|c| format!("grade {c}"));
    RatingMatrix::new(RatingMatrix::positional_categories(labels), rows).expect("valid test matrix")
}

fn assert_close(actual: Result<f64, Undefined>, expected: f64) {
    let actual = actual.unwrap_or_else(|undefined| panic!("undefined ({}), expected {expected}", undefined.reason));
    assert!((actual - expected).abs() < 1e-14, "got {actual}, expected {expected}");
}

fn assert_reason(report: &AgreementReport, metric: Metric, reason: &str) {
    match report.get(metric.name()) {
        Ok(value) => panic!("{} = {value}, expected undefined: {reason}", metric.name()),
        Err(undefined) => assert_eq!(undefined.reason, reason, "{}", metric.name()),
    }
}

fn assert_shape(report: &AgreementReport) {
    for metric in Metric::ALL {
        let defined = report.values.get(metric.name());
        let undefined = report.undefined.get(metric.name());
        assert!(defined.is_some() != undefined.is_some(), "{} must be in exactly one map", metric.name());
        if let Some(value) = defined {
            assert!(value.is_finite(), "{} = {value}", metric.name());
        }
    }
    assert_eq!(report.values.len() + report.undefined.len(), Metric::ALL.len());
}

/// Four items, three raters, categories 0..3; the last item has two ratings.
fn small_matrix() -> RatingMatrix {
    positional(
        3,
        &[
            vec![Some(0), Some(0), Some(0)],
            vec![Some(1), Some(1), Some(0)],
            vec![Some(2), Some(2), Some(2)],
            vec![Some(0), Some(1), None],
        ],
    )
}

#[test]
fn percent_agreement_by_hand() {
    // Per-item agreeing pair shares 1, 1/3, 1 and 0.
    assert_close(percent_agreement(&small_matrix()), 7.0 / 12.0);
}

#[test]
fn generalized_fleiss_by_hand() {
    // π = (11, 7, 6) / 24, so pe = 206/576 and kappa = (336 − 206) / (576 − 206).
    assert_close(fleiss_kappa_generalized(&small_matrix()), 13.0 / 37.0);
}

#[test]
fn gwet_ac1_by_hand() {
    // pe = T_w / (q (q − 1)) · (1 − Σπ²) with T_w = q = 3, so pe = 370/1152.
    assert_close(gwet_ac1(&small_matrix()), (672.0 - 370.0) / (1152.0 - 370.0));
}

#[test]
fn brennan_prediger_by_hand() {
    assert_close(brennan_prediger(&small_matrix()), (7.0 / 12.0 - 1.0 / 3.0) / (2.0 / 3.0));
}

#[test]
fn krippendorff_nominal_by_hand() {
    // Coincidences [[3, 2, 0], [2, 1, 0], [0, 0, 3]], n = 11, marginals (5, 3, 3):
    // alpha = 1 − 10 · 4 / (2 · (15 + 15 + 9)).
    assert_close(krippendorff_alpha(&small_matrix(), Level::Nominal), 19.0 / 39.0);
}

#[test]
fn fleiss_rejects_unequal_rating_counts() {
    let report = compute_all(&small_matrix());
    assert_shape(&report);
    let reason = "Fleiss' kappa needs the same number of ratings on every item; use fleiss_kappa_generalized";
    assert_reason(&report, Metric::FleissKappa, reason);
    assert_reason(&report, Metric::FleissKappaRandolph, reason);
    assert_reason(&report, Metric::CohenKappa, "Cohen's kappa needs exactly two raters; this data has 3");
}

#[test]
fn fleiss_drops_empty_items() {
    let complete = positional(2, &[vec![Some(0), Some(0)], vec![Some(1), Some(0)], vec![Some(1), Some(1)]]);
    let with_empty =
        positional(2, &[vec![Some(0), Some(0)], vec![None, None], vec![Some(1), Some(0)], vec![Some(1), Some(1)]]);
    assert_eq!(fleiss_kappa(&complete), fleiss_kappa(&with_empty));
    assert!(fleiss_kappa(&complete).is_ok());
}

#[test]
fn one_rater_is_undefined_everywhere() {
    let m = positional(3, &[vec![Some(0)], vec![Some(1)], vec![Some(2)]]);
    let report = compute_all(&m);
    assert_shape(&report);
    assert!(report.values.is_empty(), "{:?}", report.values);
    assert_reason(&report, Metric::PercentAgreement, "agreement needs at least two raters; this data has 1");
    assert_reason(&report, Metric::KrippendorffAlphaOrdinal, "agreement needs at least two raters; this data has 1");
    assert_reason(&report, Metric::CohenKappa, "Cohen's kappa needs exactly two raters; this data has 1");
}

#[test]
fn one_category_used_is_undefined_for_kappas() {
    let m = positional(3, &vec![vec![Some(1), Some(1)]; 6]);
    let report = compute_all(&m);
    assert_shape(&report);
    assert_reason(
        &report,
        Metric::CohenKappa,
        "only one category was used, so chance agreement is total and Cohen's kappa is undefined",
    );
    assert_reason(
        &report,
        Metric::FleissKappa,
        "only one category was used, so chance agreement is total and Fleiss' kappa is undefined",
    );
    assert_reason(
        &report,
        Metric::KrippendorffAlphaNominal,
        "only one category was used, so expected disagreement is 0 and Krippendorff's alpha is undefined",
    );
    // Chance agreement of Gwet, Brennan-Prediger and Randolph stays below 1 with 3 declared categories.
    assert_eq!(report.get("gwet_ac1"), Ok(1.0));
    assert_eq!(report.get("brennan_prediger"), Ok(1.0));
    assert_eq!(report.get("fleiss_kappa_randolph"), Ok(1.0));
    assert_eq!(report.get("percent_agreement"), Ok(1.0));
}

#[test]
fn single_declared_category_follows_irrcac() {
    let m = positional(1, &vec![vec![Some(0), Some(0), Some(0)]; 4]);
    let report = compute_all(&m);
    assert_shape(&report);
    assert_eq!(report.get("gwet_ac1"), Ok(1.0));
    assert_eq!(report.get("brennan_prediger"), Ok(1.0));
    assert_reason(&report, Metric::GwetAc2Linear, "value weights need at least two declared categories");
    assert_reason(
        &report,
        Metric::KrippendorffAlphaInterval,
        "Krippendorff's alpha needs at least two declared categories",
    );
    assert_reason(
        &report,
        Metric::FleissKappaRandolph,
        "only one category is declared, so chance agreement is total and Randolph's kappa is undefined",
    );
}

#[test]
fn no_pairable_item_is_undefined() {
    let m = positional(3, &[vec![Some(0), None], vec![None, Some(1)], vec![None, None]]);
    let report = compute_all(&m);
    assert_shape(&report);
    assert!(report.values.is_empty(), "{:?}", report.values);
    assert_reason(&report, Metric::PercentAgreement, "no item has two ratings");
    assert_reason(&report, Metric::GwetAc2Quadratic, "no item has two ratings");
    assert_reason(&report, Metric::KrippendorffAlphaRatio, "no item has two ratings");
    assert_reason(&report, Metric::CohenKappaLinear, "no item was rated by both raters");
}

#[test]
fn empty_matrices_are_undefined_without_panicking() {
    let no_items = positional(3, &[]);
    let report = compute_all(&no_items);
    assert_shape(&report);
    assert!(report.values.is_empty());

    let no_raters = positional(3, &[vec![], vec![]]);
    let report = compute_all(&no_raters);
    assert_shape(&report);
    assert!(report.values.is_empty());
    assert!(bootstrap(&no_raters, 10, 1, 0.95).is_empty());
}

#[test]
fn equal_category_values_leave_value_metrics_undefined() {
    let categories = vec![Category { label: "a".into(), value: 1.0 }, Category { label: "b".into(), value: 1.0 }];
    let m = RatingMatrix::new(categories, &[vec![Some(0), Some(1)], vec![Some(1), Some(1)], vec![Some(0), Some(0)]])
        .expect("valid test matrix");
    let report = compute_all(&m);
    assert_shape(&report);
    assert_reason(
        &report,
        Metric::GwetAc2Linear,
        "all declared categories have the same value, so weights by value are undefined",
    );
    assert!(report.get("krippendorff_alpha_interval").is_err());
    assert!(report.get("krippendorff_alpha_nominal").is_ok());
}

#[test]
fn non_finite_category_value_is_reported() {
    let categories = vec![Category { label: "a".into(), value: 0.0 }, Category { label: "b".into(), value: f64::NAN }];
    let m = RatingMatrix::new(categories, &[vec![Some(0), Some(1)], vec![Some(1), Some(1)], vec![Some(0), Some(0)]])
        .expect("valid test matrix");
    let report = compute_all(&m);
    assert_shape(&report);
    assert!(report.undefined["krippendorff_alpha_ratio"].contains("finite"));
    assert!(report.undefined["gwet_ac2_quadratic"].contains("finite"));
}

/// Items from a 64-bit LCG: a true grade, then each of `n_raters` raters agrees with it with
/// probability 0.7, guesses otherwise, and misses the item with probability 0.1.
fn simulated(n_items: usize, n_raters: usize, n_categories: u32, seed: u64) -> RatingMatrix {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let rows: Vec<Vec<Option<u32>>> = (0..n_items)
        .map(|_| {
            let truth = (uniform() * f64::from(n_categories)) as u32;
            (0..n_raters)
                .map(|_| {
                    if uniform() < 0.1 {
                        None
                    } else if uniform() < 0.7 {
                        Some(truth)
                    } else {
                        Some((uniform() * f64::from(n_categories)) as u32)
                    }
                })
                .collect()
        })
        .collect();
    positional(n_categories as usize, &rows)
}

#[test]
fn bootstrap_is_reproducible_for_a_seed() {
    let m = simulated(150, 3, 4, 7);
    let first = bootstrap(&m, 300, 42, 0.95);
    let second = bootstrap(&m, 300, 42, 0.95);
    assert_eq!(first, second);
    let other_seed = bootstrap(&m, 300, 43, 0.95);
    assert_ne!(first, other_seed);
}

#[test]
fn bootstrap_interval_contains_estimate() {
    let m = simulated(300, 4, 5, 11);
    let report = compute_all(&m);
    let intervals = bootstrap(&m, 400, 3, 0.95);
    for (name, value) in &report.values {
        let (lower, upper) = intervals.get(name).copied().unwrap_or_else(|| panic!("no interval for {name}"));
        assert!(lower < upper, "{name}: [{lower}, {upper}]");
        assert!(lower <= *value, "{name} = {value} below [{lower}, {upper}]");
        assert!(*value <= upper, "{name} = {value} above [{lower}, {upper}]");
    }
    // Cohen's kappa is undefined for 4 raters, so it has no interval.
    assert!(!intervals.contains_key("cohen_kappa"));
}

#[test]
fn bootstrap_wider_level_gives_wider_interval() {
    let m = simulated(200, 2, 3, 5);
    let narrow = bootstrap(&m, 300, 9, 0.80);
    let wide = bootstrap(&m, 300, 9, 0.99);
    let (narrow_lower, narrow_upper) = narrow["cohen_kappa"];
    let (wide_lower, wide_upper) = wide["cohen_kappa"];
    assert!(wide_lower <= narrow_lower, "99% lower {wide_lower} above 80% lower {narrow_lower}");
    assert!(narrow_upper <= wide_upper, "99% upper {wide_upper} below 80% upper {narrow_upper}");
}

#[test]
fn bootstrap_rejects_invalid_arguments() {
    let m = simulated(50, 3, 3, 1);
    assert!(bootstrap(&m, 0, 1, 0.95).is_empty());
    assert!(bootstrap(&m, 100, 1, 0.0).is_empty());
    assert!(bootstrap(&m, 100, 1, 1.0).is_empty());
    assert!(bootstrap(&m, 100, 1, f64::NAN).is_empty());
}

#[test]
fn bootstrap_skips_metrics_rarely_defined() {
    // Kappa needs both doubly rated items in a replicate, which happens with probability
    // about (1 − 1/e)² ≈ 0.40: below the required share of replicates.
    let mut rows = vec![vec![Some(0), None]; 100];
    rows.push(vec![Some(0), Some(0)]);
    rows.push(vec![Some(1), Some(1)]);
    let m = positional(2, &rows);
    assert_eq!(cohen_kappa(&m, Weighting::Unweighted), Ok(1.0));
    let intervals = bootstrap(&m, 400, 1, 0.95);
    assert!(!intervals.contains_key("cohen_kappa"), "{intervals:?}");
    assert_eq!(intervals.get("percent_agreement"), Some(&(1.0, 1.0)));
}

fn assert_relative(actual: Result<f64, Undefined>, expected: f64) {
    let actual = actual.unwrap_or_else(|undefined| panic!("undefined ({}), expected {expected}", undefined.reason));
    assert!((actual - expected).abs() <= 1e-12 * expected.abs(), "got {actual}, expected {expected}");
}

/// Two raters expanded from a row-major table of counts over `q` categories.
fn from_table(q: usize, table: &[u32]) -> RatingMatrix {
    let mut rows = Vec::new();
    for (cell, &count) in table.iter().enumerate() {
        let (a, b) = (cell / q, cell % q);
        for _ in 0..count {
            rows.push(vec![Some(a as u32), Some(b as u32)]);
        }
    }
    positional(q, &rows)
}

#[test]
fn linearized_standard_errors_match_irrcac() {
    // irrCAC 0.4.4 raw.CAC(categories=[0, 1, 2], digits=17) on the same ratings, field est.se.
    let m = small_matrix();
    assert_relative(linearized_standard_error(&m, Metric::GwetAc1), 0.36719275257223966);
    assert_relative(linearized_standard_error(&m, Metric::GwetAc2Linear), 0.2722531972777195);
    assert_relative(linearized_standard_error(&m, Metric::GwetAc2Quadratic), 0.1829130616758968);
    assert_relative(linearized_standard_error(&m, Metric::FleissKappaGeneralized), 0.40552455161902046);
    assert_relative(linearized_standard_error(&m, Metric::BrennanPrediger), 0.375);
    assert!(linearized_standard_error(&m, Metric::KrippendorffAlphaNominal).is_err());
}

#[test]
fn cohen_standard_errors_match_statsmodels() {
    // statsmodels 0.15.0 cohens_kappa(table, wt=...).std_kappa.
    let two_by_two = from_table(2, &[20, 5, 10, 15]);
    assert_relative(cohen_kappa_standard_error(&two_by_two, Weighting::Unweighted), 0.12699606293110033);
    let three_by_three = from_table(3, &[2, 1, 0, 0, 2, 1, 0, 0, 2]);
    assert_relative(cohen_kappa_standard_error(&three_by_three, Weighting::Linear), 0.1784985273932235);
    assert_relative(cohen_kappa_standard_error(&three_by_three, Weighting::Quadratic), 0.12914327373739);
}

#[test]
fn fleiss_null_standard_error_by_hand() {
    // Balanced categories: Σ p_j q_j (q_j − p_j) = 0, so var₀ = 2 / (N m (m − 1)) = 2 / 8.
    let m = positional(
        2,
        &[vec![Some(0), Some(0)], vec![Some(1), Some(1)], vec![Some(0), Some(1)], vec![Some(1), Some(0)]],
    );
    assert_relative(fleiss_kappa_null_standard_error(&m), 0.5);
    assert!(fleiss_kappa_null_standard_error(&small_matrix()).is_err());
}

#[test]
fn standard_error_report_covers_listed_metrics() {
    let report = standard_errors(&small_matrix());
    for name in ["fleiss_kappa_generalized", "gwet_ac1", "gwet_ac2_linear", "gwet_ac2_quadratic", "brennan_prediger"] {
        assert!(report.values.contains_key(name), "{name}: {:?}", report.undefined.get(name));
    }
    for name in ["cohen_kappa", "fleiss_kappa"] {
        assert!(report.undefined.contains_key(name), "{name} should be undefined for 3 raters with a missing rating");
    }
}

#[test]
fn metric_names_round_trip() {
    for metric in Metric::ALL {
        assert_eq!(Metric::from_name(metric.name()), Some(metric));
        let json = serde_json::to_string(&metric).expect("a metric serializes");
        assert_eq!(json, format!("\"{}\"", metric.name()));
    }
    assert_eq!(Metric::from_name("kappa"), None);
}
