//! End-to-end runs on small synthetic PNGs: dark images are class 0, bright images class 1.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use super::*;

/// Writes a `side` × `side` PNG around grey level `level`, with seeded noise so that no two
/// files have the same content.
fn write_png(folder: &Path, name: &str, level: u8, side: u32, seed: u64) -> PathBuf {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        let value = (i32::from(level) + rng.random_range(-20..=20)).clamp(0, 255) as u8;
        image::Rgb([value, value / 2, value / 3])
    });
    let path = folder.join(name);
    image.save(&path).unwrap();
    path
}

struct Fixture {
    folder: tempfile::TempDir,
    labeled: Vec<LabeledImage>,
    unlabeled: Vec<UnlabeledImage>,
}

/// `labeled_per_class` dark and as many bright labeled images, then `unlabeled` images
/// alternating dark and bright.
fn fixture(labeled_per_class: usize, unlabeled: usize) -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let mut labeled = Vec::new();
    for index in 0..2 * labeled_per_class {
        let class = index % 2;
        let level = if class == 0 { 40 } else { 210 };
        let path = write_png(folder.path(), &format!("labeled-{index}.png"), level, 40, index as u64);
        labeled.push(LabeledImage { item_id: index as i64, path, class, group: None });
    }
    let unlabeled = (0..unlabeled)
        .map(|index| {
            let level = if index % 2 == 0 { 40 } else { 210 };
            let path = write_png(folder.path(), &format!("unlabeled-{index}.png"), level, 40, 1000 + index as u64);
            UnlabeledImage { item_id: 100 + index as i64, path }
        })
        .collect();
    Fixture { folder, labeled, unlabeled }
}

fn config(fixture: &Fixture) -> RunConfig {
    RunConfig {
        classes: vec!["absent".to_string(), "present".to_string()],
        resolution: 32,
        epochs: 1,
        batch_size: 4,
        mc_samples: 5,
        diversity_batch: 2,
        seed: 3,
        cache_dir: fixture.folder.path().join("cache"),
        ..RunConfig::default()
    }
}

#[test]
fn tiny_run_scores_every_image() {
    let fixture = fixture(3, 4);
    let config = config(&fixture);
    let mut stages = Vec::new();
    let output = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |p| stages.push(p)).unwrap();

    assert_eq!(output.model_kind, "scratch-cnn");
    assert_eq!(output.scores.len(), 4);
    let ids: Vec<i64> = output.scores.iter().map(|score| score.item_id).collect();
    assert_eq!(ids, vec![100, 101, 102, 103]);
    for score in &output.scores {
        let total: f64 = score.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "probabilities sum to {total}");
        assert_eq!(score.embedding.len(), 64);
        assert!(score.bald >= 0.0);
        assert!(score.cluster.is_some());
    }
    let mut priorities: Vec<f64> = output.scores.iter().map(|score| score.priority).collect();
    priorities.sort_by(f64::total_cmp);
    assert_eq!(priorities, vec![1.0, 2.0, 3.0, 4.0]);

    let evaluation = &output.evaluation;
    assert_eq!(evaluation.train_count + evaluation.heldout_count, 6);
    assert!(evaluation.heldout_count >= 1);
    assert!(output.train_images_per_second > 0.0);

    let fractions: Vec<f64> = stages.iter().map(|p| p.fraction).collect();
    assert!(fractions.windows(2).all(|pair| pair[0] <= pair[1]), "{fractions:?}");
    assert_eq!(fractions.last(), Some(&1.0));
}

#[test]
fn tiny_run_is_repeatable_and_cached() {
    let fixture = fixture(3, 4);
    let config = config(&fixture);
    let first = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap();

    // One cache file per held-out and unlabeled image (all contents differ).
    let cached = std::fs::read_dir(config.cache_dir.join(&first.model_hash)).unwrap().count();
    assert_eq!(cached, first.evaluation.heldout_count + 4);

    let second = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap();
    assert_eq!(first.model_hash, second.model_hash);
    assert_eq!(first.scores, second.scores);
    assert_eq!(first.evaluation, second.evaluation);
}

#[test]
fn random_strategy_ignores_model() {
    let fixture = fixture(3, 6);
    let config = RunConfig { strategy: Strategy::Random, ..config(&fixture) };
    let output = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap();
    let expected = crate::domain::active_learning::random_priorities(6, config.seed ^ workflow::stream::RANDOM_STRATEGY);
    let priorities: Vec<f64> = output.scores.iter().map(|score| score.priority).collect();
    assert_eq!(priorities, expected);
}

#[test]
fn learns_dark_versus_bright() {
    let fixture = fixture(10, 8);
    let config = RunConfig { epochs: 15, learning_rate: 0.01, confidence_threshold: 0.6, ..config(&fixture) };
    let output = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap();

    assert_eq!(output.evaluation.accuracy, 1.0, "{:?}", output.evaluation.confusion);
    for (index, score) in output.scores.iter().enumerate() {
        let expected = index % 2;
        let proposal = score.proposal.expect("a confident prediction");
        assert_eq!(proposal.class, expected, "unlabeled image {index}: {:?}", score.probabilities);
    }
}

#[test]
fn pretrained_resnet_trains_head_only() {
    let fixture = fixture(3, 2);
    let models = fixture.folder.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let device = candle_core::Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &device);
    candle_transformers::models::resnet::resnet18_no_final_layer(vb).unwrap();
    varmap.save(models.join("resnet18.safetensors")).unwrap();

    let config = RunConfig { models_dir: Some(models), ..config(&fixture) };
    let output = run(&config, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap();
    assert_eq!(output.model_kind, "resnet18");
    assert_eq!(output.scores[0].embedding.len(), 512);
    // Training images were embedded through the cache as well.
    let cached = std::fs::read_dir(config.cache_dir.join(&output.model_hash)).unwrap().count();
    assert_eq!(cached, 6 + 2);
}

#[test]
fn invalid_inputs_rejected() {
    let fixture = fixture(3, 1);
    let base = config(&fixture);

    let one_class = RunConfig { classes: vec!["only".to_string()], ..base.clone() };
    let message = run(&one_class, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("classes"), "{message}");

    let tiny = RunConfig { resolution: 4, ..base.clone() };
    let message = run(&tiny, &fixture.labeled, &fixture.unlabeled, &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("resolution 4"), "{message}");

    let mut out_of_range = fixture.labeled.clone();
    out_of_range[2].class = 5;
    let message = run(&base, &out_of_range, &fixture.unlabeled, &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("labeled item 2 has class index 5"), "{message}");

    let missing = vec![UnlabeledImage { item_id: 9, path: fixture.folder.path().join("gone.png") }];
    let message = run(&base, &fixture.labeled, &missing, &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("gone.png"), "{message}");

    let message = run(&base, &fixture.labeled[..1], &fixture.unlabeled, &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("at least 2"), "{message}");
}
