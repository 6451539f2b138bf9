//! Timing of the agreement statistics on 100,000 items × 5 raters, 5 categories, 10% missing.
//!
//! The matrix comes from the 64-bit LCG that `tests/data/agreement-vectors.json` documents for
//! its large case (seed 12345, rater accuracies 0.9 to 0.5), so
//! `benches/krippendorff_python.py` regenerates exactly the same data for the Python timing.
//!
//! Run with `cargo bench --bench agreement`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use quorum::domain::agreement::{bootstrap, compute_all, krippendorff_alpha, Level, DEFAULT_REPLICATES};
use quorum::domain::ratings::{Category, RatingMatrix};

const N_ITEMS: usize = 100_000;
const N_CATEGORIES: u32 = 5;
const P_MISSING: f64 = 0.1;
const ACCURACY: [f64; 5] = [0.9, 0.8, 0.7, 0.6, 0.5];
const SEED: u64 = 12345;

/// Uniform doubles in [0, 1): state = 6364136223846793005 · state + 1442695040888963407
/// (mod 2^64), then (state >> 11) / 2^53. The seed itself is not emitted.
struct Lcg(u64);

impl Lcg {
    fn next_uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// For each item: a true grade; then for each rater a missing draw, an accuracy draw and,
/// when the rater errs, a uniform grade. Category k has label and value k + 1.
fn generate() -> RatingMatrix {
    let mut lcg = Lcg(SEED);
    let n_categories = f64::from(N_CATEGORIES);
    let mut rows = Vec::with_capacity(N_ITEMS);
    for _ in 0..N_ITEMS {
        let truth = (lcg.next_uniform() * n_categories) as u32;
        let mut row = Vec::with_capacity(ACCURACY.len());
        for accuracy in ACCURACY {
            if lcg.next_uniform() < P_MISSING {
                row.push(None);
            } else if lcg.next_uniform() < accuracy {
                row.push(Some(truth));
            } else {
                row.push(Some((lcg.next_uniform() * n_categories) as u32));
            }
        }
        rows.push(row);
    }
    let categories =
        (1..=N_CATEGORIES).map(|value| Category { label: value.to_string(), value: f64::from(value) }).collect();
    RatingMatrix::new(categories, &rows).expect("generated ratings use declared categories")
}

fn agreement(c: &mut Criterion) {
    let m = generate();
    println!(
        "krippendorff_alpha_ordinal = {:?}, nominal = {:?} on {m}",
        krippendorff_alpha(&m, Level::Ordinal),
        krippendorff_alpha(&m, Level::Nominal)
    );

    let mut group = c.benchmark_group("agreement_100000x5");
    group.sample_size(10);
    group.bench_function("compute_all_and_bootstrap_1000", |b| {
        b.iter(|| {
            let report = compute_all(black_box(&m));
            let intervals = bootstrap(black_box(&m), DEFAULT_REPLICATES, 7, 0.95);
            (report, intervals)
        })
    });
    group.bench_function("compute_all", |b| b.iter(|| compute_all(black_box(&m))));
    group
        .bench_function("krippendorff_alpha_ordinal", |b| b.iter(|| krippendorff_alpha(black_box(&m), Level::Ordinal)));
    group
        .bench_function("krippendorff_alpha_nominal", |b| b.iter(|| krippendorff_alpha(black_box(&m), Level::Nominal)));
    group.finish();
}

criterion_group!(benches, agreement);
criterion_main!(benches);
