//! Dawid-Skene EM on 100,000 items x 5 raters, 5 classes, 10% of ratings missing.
//!
//! Run with `cargo bench --bench dawid_skene`. The data come from a fixed 64-bit LCG, so
//! every run measures the same input: each rater reports the true class with probability
//! 0.7 and a uniformly drawn other class otherwise.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use quorum::domain::aggregate::{dawid_skene, majority_vote, Responses, Stopping};
use quorum::domain::ratings::RatingMatrix;

const N_ITEMS: usize = 100_000;
const N_RATERS: usize = 5;
const N_CLASSES: u32 = 5;
const MISSING_SHARE: f64 = 0.1;
const ACCURACY: f64 = 0.7;

/// Knuth's MMIX linear congruential generator.
struct Lcg(u64);

impl Lcg {
    /// Uniform draw in [0, 1) from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u32) -> u32 {
        ((self.uniform() * n as f64) as u32).min(n - 1)
    }
}

fn synthetic_matrix() -> RatingMatrix {
    let mut rng = Lcg(20240601);
    let rows: Vec<Vec<Option<u32>>> = (0..N_ITEMS)
        .map(|_| {
            let truth = rng.below(N_CLASSES);
            (0..N_RATERS)
                .map(|_| {
                    if rng.uniform() < MISSING_SHARE {
                        return None;
                    }
                    if rng.uniform() < ACCURACY {
                        Some(truth)
                    } else {
                        Some((truth + 1 + rng.below(N_CLASSES - 1)) % N_CLASSES)
                    }
                })
                .collect()
        })
        .collect();
    let categories = RatingMatrix::positional_categories((0..N_CLASSES).map(|class| class.to_string()));
    RatingMatrix::new(categories, &rows).expect("synthetic matrix is valid")
}

fn bench_aggregation(c: &mut Criterion) {
    let matrix = synthetic_matrix();
    let responses = Responses::from_matrix(&matrix);

    let mut group = c.benchmark_group("aggregate_100k_items_5_raters_5_classes");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    group.bench_function("dawid_skene_100_iterations_1_thread", |b| {
        b.iter(|| dawid_skene(black_box(&responses), Stopping::Fixed { iterations: 100 }, NonZeroUsize::MIN))
    });
    group.bench_function(format!("dawid_skene_100_iterations_{threads}_threads"), |b| {
        b.iter(|| dawid_skene(black_box(&responses), Stopping::Fixed { iterations: 100 }, threads))
    });
    group.bench_function("majority_vote", |b| b.iter(|| majority_vote(black_box(&responses))));
    group.bench_function("responses_from_matrix", |b| b.iter(|| Responses::from_matrix(black_box(&matrix))));
    group.finish();
}

criterion_group!(benches, bench_aggregation);
criterion_main!(benches);
