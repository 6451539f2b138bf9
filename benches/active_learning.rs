//! Throughput of the active-learning model on the CPU.
//!
//! - `train 128px`: [`quorum::ml::run_with_split`] training the from-scratch CNN for 2 epochs on
//!   the 54 demo fundus photographs (512 × 512 JPEG) at 128 px, with one held-out image and
//!   nothing to score. Throughput counts image passes (54 × 2); decoding the images and
//!   embedding the held-out one are included.
//! - `score 128px`: the same call on 4 training images for 1 epoch, then 256 unlabeled
//!   synthetic 512 × 512 PNGs through the trunk and the head, with an empty embedding cache
//!   each time. Scoring is decode, resize, trunk, 20 Monte Carlo head passes, scores, k-means.
//! - `rescore 10,000 cached`: a frozen ResNet-18 (random weights written as
//!   `resnet18.safetensors`, input 32 px) whose embeddings (512 values) of 10,000 unlabeled
//!   images are already cached: each run reads and hashes the 10,000 files, loads the cached
//!   embeddings, trains the head, and computes 20 Monte Carlo passes, every score, k-means with
//!   k = 20 and the priorities.
//!
//! Run with `cargo bench --bench active_learning`; `docs/benchmarks.md` lists measured results.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quorum::ml::{self, LabeledImage, RunConfig, UnlabeledImage};
use rand::{Rng, SeedableRng};

const DEMO_IMAGES: &str = "seed/idrid-segmentation-subset/images";
const SCORED_IMAGES: usize = 256;
const CACHED_ITEMS: usize = 10_000;

fn classes() -> Vec<String> {
    vec!["absent".to_string(), "present".to_string()]
}

fn demo_images() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO_IMAGES);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("the demo images are in the repository")
        .map(|entry| entry.expect("readable folder entry").path())
        .collect();
    paths.sort();
    paths
}

/// Writes `count` distinct noisy PNGs of `side` × `side` pixels.
fn synthetic_images(folder: &Path, count: usize, side: u32) -> Vec<PathBuf> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    (0..count)
        .map(|index| {
            let image = image::RgbImage::from_fn(side, side, |_, _| image::Rgb([rng.random(), rng.random(), rng.random()]));
            let path = folder.join(format!("image-{index:05}.png"));
            image.save(&path).expect("writable temporary folder");
            path
        })
        .collect()
}

fn labeled(paths: &[PathBuf]) -> Vec<LabeledImage> {
    paths
        .iter()
        .enumerate()
        .map(|(index, path)| LabeledImage { item_id: index as i64, path: path.clone(), class: index % 2, group: None })
        .collect()
}

fn unlabeled(paths: &[PathBuf]) -> Vec<UnlabeledImage> {
    paths
        .iter()
        .enumerate()
        .map(|(index, path)| UnlabeledImage { item_id: 1_000_000 + index as i64, path: path.clone() })
        .collect()
}

fn train_throughput(c: &mut Criterion) {
    let images = labeled(&demo_images());
    let (heldout, train) = images.split_at(1);
    let cache = tempfile::tempdir().expect("temporary folder");
    let config = RunConfig { classes: classes(), epochs: 2, cache_dir: cache.path().to_path_buf(), ..RunConfig::default() };

    let mut group = c.benchmark_group("active learning");
    group.sample_size(10);
    group.throughput(Throughput::Elements((train.len() * config.epochs) as u64));
    group.bench_function("train 128px", |b| {
        b.iter(|| black_box(ml::run_with_split(&config, train, heldout, &[], &mut |_| {}).expect("training run")))
    });
    group.finish();
}

fn score_throughput(c: &mut Criterion) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let paths = synthetic_images(folder.path(), SCORED_IMAGES + 5, 512);
    let images = labeled(&paths[..5]);
    let (heldout, train) = images.split_at(1);
    let to_score = unlabeled(&paths[5..]);

    let mut group = c.benchmark_group("active learning");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SCORED_IMAGES as u64));
    group.bench_function("score 128px", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("temporary folder"),
            |cache| {
                let config = RunConfig { classes: classes(), epochs: 1, cache_dir: cache.path().to_path_buf(), ..RunConfig::default() };
                black_box(ml::run_with_split(&config, train, heldout, &to_score, &mut |_| {}).expect("scoring run"))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn rescore_cached(c: &mut Criterion) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let models = folder.path().join("models");
    std::fs::create_dir_all(&models).expect("writable temporary folder");
    let device = candle_core::Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &device);
    candle_transformers::models::resnet::resnet18_no_final_layer(vb).expect("ResNet-18 variables");
    varmap.save(models.join("resnet18.safetensors")).expect("writable temporary folder");

    let paths = synthetic_images(folder.path(), CACHED_ITEMS + 41, 32);
    let images = labeled(&paths[..41]);
    let (heldout, train) = images.split_at(1);
    let to_score = unlabeled(&paths[41..]);
    let config = RunConfig {
        classes: classes(),
        resolution: 32,
        models_dir: Some(models),
        cache_dir: folder.path().join("cache"),
        ..RunConfig::default()
    };
    // The first run fills the cache; the measured runs read it.
    ml::run_with_split(&config, train, heldout, &to_score, &mut |_| {}).expect("filling the cache");

    let mut group = c.benchmark_group("active learning");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CACHED_ITEMS as u64));
    group.bench_function("rescore 10,000 cached", |b| {
        b.iter(|| black_box(ml::run_with_split(&config, train, heldout, &to_score, &mut |_| {}).expect("rescoring run")))
    });
    group.finish();
}

criterion_group!(benches, train_throughput, score_throughput, rescore_cached);
criterion_main!(benches);
