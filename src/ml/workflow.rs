//! One run: check the inputs, train, embed, score, cluster, prioritise and evaluate.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::cache::EmbeddingCache;
use super::network::{Head, ScratchTrunk, CHANNELS, MIN_RESOLUTION};
use super::pretrained::{load_backbone, Backbone};
use super::train::{embedding_matrix, train_end_to_end, train_head, TrainSettings};
use super::{cluster, images, ItemScore, LabeledImage, MlError, Progress, RunConfig, RunOutput, Strategy, UnlabeledImage};
use crate::domain::active_learning::{self as al, split_by_group};

/// Largest accepted input side, in pixels.
const MAX_RESOLUTION: u32 = 1024;
/// Images per forward pass when computing embeddings.
const EMBEDDING_BATCH: usize = 32;
/// Rows per Monte Carlo scoring pass, which bounds the dropout-mask memory.
const SCORING_CHUNK: usize = 4096;
/// A frozen backbone trains only the head, on cached embeddings, for this many times the
/// configured epochs, because a head epoch costs almost nothing next to a trunk epoch.
pub const HEAD_ONLY_EPOCH_FACTOR: usize = 10;

/// Fractions of the whole run at which each stage ends; the progress callback interpolates.
const LOADED: f64 = 0.05;
const TRAINED: f64 = 0.75;
const EMBEDDED: f64 = 0.9;
const SCORED: f64 = 0.95;
const CLUSTERED: f64 = 0.99;

/// Independent random streams, one per use, all derived from the run's seed.
pub(super) mod stream {
    pub const WEIGHTS: u64 = 1;
    pub const TRAINING: u64 = 2;
    pub const SCORING: u64 = 3;
    pub const CLUSTERING: u64 = 4;
    pub const RANDOM_STRATEGY: u64 = 5;
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Splits `labeled` into train and held-out sides by group (seeded by `config.seed`), then
/// calls [`run_with_split`].
///
/// # Errors
/// Invalid settings, a class index outside `config.classes`, fewer than two groups, an image
/// that cannot be read or decoded, unusable pretrained weights, or a failed cache write.
pub fn run(
    config: &RunConfig,
    labeled: &[LabeledImage],
    unlabeled: &[UnlabeledImage],
    progress: &mut dyn FnMut(Progress),
) -> Result<RunOutput, MlError> {
    check_classes(config, labeled)?;
    let items: Vec<(Option<&str>, usize)> = labeled.iter().map(|image| (image.group.as_deref(), image.class)).collect();
    let split = split_by_group(&items, config.holdout_fraction, config.seed)?;
    let train: Vec<LabeledImage> = split.train.iter().map(|&index| labeled[index].clone()).collect();
    let heldout: Vec<LabeledImage> = split.heldout.iter().map(|&index| labeled[index].clone()).collect();
    run_with_split(config, &train, &heldout, unlabeled, progress)
}

/// Trains on `train`, evaluates on `heldout` and scores `unlabeled` (see the module
/// documentation of [`crate::ml`]). Errors as for [`run`], and empty `train` or `heldout`.
pub fn run_with_split(
    config: &RunConfig,
    train: &[LabeledImage],
    heldout: &[LabeledImage],
    unlabeled: &[UnlabeledImage],
    progress: &mut dyn FnMut(Progress),
) -> Result<RunOutput, MlError> {
    check_config(config)?;
    check_classes(config, train)?;
    check_classes(config, heldout)?;
    if train.is_empty() {
        return Err(MlError::config("training images", 0, "at least one labeled image must be on the train side"));
    }
    if heldout.is_empty() {
        return Err(MlError::config("held-out images", 0, "at least one labeled image must be held out for evaluation"));
    }

    let device = Device::cuda_if_available(0)?;
    let model = train_model(config, train, &device, progress)?;
    let cache = EmbeddingCache::open(&config.cache_dir, &model.hash)?;

    // Held-out and unlabeled images pass through the trunk once, or not at all when cached.
    let paths: Vec<&Path> = heldout.iter().map(|image| image.path.as_path()).chain(unlabeled.iter().map(|image| image.path.as_path())).collect();
    let mut on_embedded = |done: usize| {
        let fraction = TRAINED + (EMBEDDED - TRAINED) * done as f64 / paths.len().max(1) as f64;
        progress(Progress { stage: "embedding", fraction });
    };
    let embeddings = embed_all(&model.extractor, &cache, &paths, config.resolution, &device, &mut on_embedded)?;
    let (heldout_embeddings, unlabeled_embeddings) = embeddings.split_at(heldout.len());

    let mut scoring_rng = rng(config.seed, stream::SCORING);
    let heldout_samples = monte_carlo(&model.head, heldout_embeddings, config.mc_samples, &mut scoring_rng, &device)?;
    let unlabeled_samples = monte_carlo(&model.head, unlabeled_embeddings, config.mc_samples, &mut scoring_rng, &device)?;
    progress(Progress { stage: "scoring", fraction: SCORED });

    let mut scores = score_items(config, unlabeled, unlabeled_embeddings, &unlabeled_samples);
    let clusters = cluster::cluster(unlabeled_embeddings, config.diversity_batch, config.seed ^ stream::CLUSTERING)?;
    assign_priorities(config, &mut scores, clusters.as_deref());
    progress(Progress { stage: "clustering", fraction: CLUSTERED });

    let references: Vec<usize> = heldout.iter().map(|image| image.class).collect();
    let heldout_probabilities: Vec<Vec<f64>> = heldout_samples.iter().map(|samples| al::mean_probabilities(samples)).collect();
    let evaluation = al::evaluate(&config.classes, train.len(), &references, &heldout_probabilities)?;
    progress(Progress { stage: "done", fraction: 1.0 });

    Ok(RunOutput {
        model_kind: model.kind,
        model_hash: model.hash,
        scores,
        evaluation,
        train_images_per_second: model.train_images_per_second,
    })
}

fn check_config(config: &RunConfig) -> Result<(), MlError> {
    if config.classes.len() < 2 {
        return Err(MlError::config("classes", format!("{:?}", config.classes), "a classifier needs at least two classes"));
    }
    if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&config.resolution) {
        let reason = format!("use a side between {MIN_RESOLUTION} and {MAX_RESOLUTION} pixels");
        return Err(MlError::config("resolution", config.resolution, reason));
    }
    let positive = [("epochs", config.epochs), ("batch size", config.batch_size), ("Monte Carlo samples", config.mc_samples)];
    for (field, value) in positive {
        if value == 0 {
            return Err(MlError::config(field, value, "must be at least 1"));
        }
    }
    if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
        return Err(MlError::config("learning rate", config.learning_rate, "must be a positive number such as 0.001"));
    }
    if !(config.confidence_threshold > 0.0 && config.confidence_threshold <= 1.0) {
        return Err(MlError::config("confidence threshold", config.confidence_threshold, "must be above 0 and at most 1"));
    }
    Ok(())
}

fn check_classes(config: &RunConfig, labeled: &[LabeledImage]) -> Result<(), MlError> {
    match labeled.iter().find(|image| image.class >= config.classes.len()) {
        Some(image) => Err(MlError::ClassOutOfRange { item_id: image.item_id, class: image.class, classes: config.classes.len() }),
        None => Ok(()),
    }
}

/// The feature extractor of a trained model.
enum Extractor {
    Scratch(ScratchTrunk),
    Backbone(Backbone),
}

impl Extractor {
    fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Extractor::Scratch(trunk) => trunk.forward(images),
            Extractor::Backbone(backbone) => backbone.forward(images),
        }
    }
}

struct TrainedModel {
    kind: String,
    hash: String,
    extractor: Extractor,
    head: Head,
    train_images_per_second: f64,
}

fn train_model(
    config: &RunConfig,
    train: &[LabeledImage],
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainedModel, MlError> {
    let backbone = match &config.models_dir {
        Some(folder) => load_backbone(folder, config.resolution, device)?,
        None => None,
    };
    let labels: Vec<usize> = train.iter().map(|image| image.class).collect();
    let mut weights_rng = rng(config.seed, stream::WEIGHTS);
    let mut training_rng = rng(config.seed, stream::TRAINING);
    let mut settings = TrainSettings {
        epochs: config.epochs,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        class_count: config.classes.len(),
    };
    let started = Instant::now();

    match backbone {
        None => {
            // NOTE: every training image stays in memory as a tensor (192 KiB at 128 px), so
            // 10,000 labeled images need about 2 GB.
            let mut images = Vec::with_capacity(train.len());
            for (index, image) in train.iter().enumerate() {
                images.push(images::load(&image.path, config.resolution, device)?.1);
                progress(Progress { stage: "loading images", fraction: LOADED * (index + 1) as f64 / train.len() as f64 });
            }
            let trunk = ScratchTrunk::new(&mut weights_rng, device)?;
            let head = Head::new(CHANNELS[2], config.classes.len(), &mut weights_rng, device)?;
            let mut on_epoch = |epoch: usize| {
                let fraction = LOADED + (TRAINED - LOADED) * epoch as f64 / config.epochs as f64;
                progress(Progress { stage: "training", fraction });
            };
            train_end_to_end(&trunk, &head, &images, &labels, &settings, &mut training_rng, &mut on_epoch)?;
            let seconds = started.elapsed().as_secs_f64();
            let hash = trunk.hash(config.resolution)?;
            Ok(TrainedModel {
                kind: "scratch-cnn".to_string(),
                hash,
                extractor: Extractor::Scratch(trunk),
                head,
                train_images_per_second: (config.epochs * train.len()) as f64 / seconds.max(1e-9),
            })
        }
        Some(backbone) => {
            let cache = EmbeddingCache::open(&config.cache_dir, &backbone.hash)?;
            let paths: Vec<&Path> = train.iter().map(|image| image.path.as_path()).collect();
            let extractor = Extractor::Backbone(backbone);
            let mut on_embedded = |done: usize| {
                progress(Progress { stage: "embedding training images", fraction: LOADED * done as f64 / paths.len() as f64 });
            };
            let embeddings = embed_all(&extractor, &cache, &paths, config.resolution, device, &mut on_embedded)?;
            let matrix = embedding_matrix(&embeddings, device)?;
            let head = Head::new(matrix.dim(1)?, config.classes.len(), &mut weights_rng, device)?;
            settings.epochs = config.epochs * HEAD_ONLY_EPOCH_FACTOR;
            let total_epochs = settings.epochs;
            let mut on_epoch = |epoch: usize| {
                let fraction = LOADED + (TRAINED - LOADED) * epoch as f64 / total_epochs as f64;
                progress(Progress { stage: "training", fraction });
            };
            train_head(&head, &matrix, &labels, &settings, &mut training_rng, &mut on_epoch)?;
            let seconds = started.elapsed().as_secs_f64();
            let Extractor::Backbone(backbone) = &extractor else { unreachable!("built as a backbone above") };
            Ok(TrainedModel {
                kind: backbone.name.to_string(),
                hash: backbone.hash.clone(),
                extractor,
                head,
                train_images_per_second: train.len() as f64 / seconds.max(1e-9),
            })
        }
    }
}

/// Embeddings of the images at `paths`, in order: from the cache when present, otherwise
/// through the extractor in batches, storing each new one. `on_done` gets the count so far.
fn embed_all(
    extractor: &Extractor,
    cache: &EmbeddingCache,
    paths: &[&Path],
    resolution: u32,
    device: &Device,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, MlError> {
    let width = embedding_width(extractor, resolution, device)?;
    let mut embeddings: Vec<Option<Vec<f32>>> = vec![None; paths.len()];
    let mut pending: Vec<(usize, String, Tensor)> = Vec::new();
    let mut done = 0;

    for (index, path) in paths.iter().enumerate() {
        let file = images::read_image(path)?;
        if let Some(embedding) = cache.get(&file.sha256, width) {
            embeddings[index] = Some(embedding);
            done += 1;
            on_done(done);
            continue;
        }
        pending.push((index, file.sha256, images::decode(path, &file.bytes, resolution, device)?));
        if pending.len() == EMBEDDING_BATCH {
            done += pending.len();
            embed_batch(extractor, cache, &mut pending, &mut embeddings)?;
            on_done(done);
        }
    }
    if !pending.is_empty() {
        done += pending.len();
        embed_batch(extractor, cache, &mut pending, &mut embeddings)?;
        on_done(done);
    }
    Ok(embeddings.into_iter().map(|embedding| embedding.expect("every image was embedded")).collect())
}

fn embed_batch(
    extractor: &Extractor,
    cache: &EmbeddingCache,
    pending: &mut Vec<(usize, String, Tensor)>,
    embeddings: &mut [Option<Vec<f32>>],
) -> Result<(), MlError> {
    let inputs: Vec<Tensor> = pending.iter().map(|(_, _, tensor)| tensor.clone()).collect();
    let outputs = extractor.forward(&Tensor::stack(&inputs, 0)?)?.to_vec2::<f32>()?;
    for ((index, sha256, _), embedding) in pending.drain(..).zip(outputs) {
        cache.put(&sha256, &embedding)?;
        embeddings[index] = Some(embedding);
    }
    Ok(())
}

/// Embedding width of the extractor, from one blank image.
fn embedding_width(extractor: &Extractor, resolution: u32, device: &Device) -> Result<usize, MlError> {
    match extractor {
        Extractor::Scratch(_) => Ok(CHANNELS[2]),
        Extractor::Backbone(_) => {
            let side = resolution as usize;
            let blank = Tensor::zeros((1, 3, side, side), candle_core::DType::F32, device)?;
            Ok(extractor.forward(&blank)?.dim(1)?)
        }
    }
}

/// Per item, `samples` softmax vectors of the head under independent dropout masks.
fn monte_carlo(
    head: &Head,
    embeddings: &[Vec<f32>],
    samples: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Vec<Vec<Vec<f64>>>, MlError> {
    let mut per_item: Vec<Vec<Vec<f64>>> = vec![Vec::with_capacity(samples); embeddings.len()];
    for (chunk_index, chunk) in embeddings.chunks(SCORING_CHUNK).enumerate() {
        let matrix = embedding_matrix(chunk, device)?;
        for _ in 0..samples {
            let logits = head.forward_with_dropout(&matrix, rng)?;
            let probabilities = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
            for (row, p) in probabilities.into_iter().enumerate() {
                per_item[chunk_index * SCORING_CHUNK + row].push(p.into_iter().map(f64::from).collect());
            }
        }
    }
    Ok(per_item)
}

/// Probabilities, uncertainty and proposals per unlabeled item; priorities come later.
fn score_items(
    config: &RunConfig,
    unlabeled: &[UnlabeledImage],
    embeddings: &[Vec<f32>],
    samples: &[Vec<Vec<f64>>],
) -> Vec<ItemScore> {
    unlabeled
        .iter()
        .zip(embeddings)
        .zip(samples)
        .map(|((image, embedding), item_samples)| {
            let probabilities = al::mean_probabilities(item_samples);
            ItemScore {
                item_id: image.item_id,
                entropy: al::entropy(&probabilities),
                margin: al::margin(&probabilities),
                least_confidence: al::least_confidence(&probabilities),
                bald: al::bald(item_samples),
                cluster: None,
                priority: 0.0,
                proposal: al::propose(&probabilities, config.confidence_threshold),
                probabilities,
                embedding: embedding.clone(),
            }
        })
        .collect()
}

fn assign_priorities(config: &RunConfig, scores: &mut [ItemScore], clusters: Option<&[usize]>) {
    if let Some(clusters) = clusters {
        scores.iter_mut().zip(clusters).for_each(|(score, &cluster)| score.cluster = Some(cluster));
    }
    let priorities = match config.strategy {
        Strategy::Random => al::random_priorities(scores.len(), config.seed ^ stream::RANDOM_STRATEGY),
        strategy => {
            let values: Vec<f64> = scores
                .iter()
                .map(|s| strategy.score(s.entropy, s.margin, s.least_confidence, s.bald).expect("a model-based strategy"))
                .collect();
            al::priorities(&values, clusters, config.diversity_batch)
        }
    };
    scores.iter_mut().zip(priorities).for_each(|(score, priority)| score.priority = priority);
}
