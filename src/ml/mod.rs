//! The active-learning model: a candle image classifier trained on the resolved labels of one
//! guideline field, which scores every unresolved image.
//!
//! [`run`] is the whole job. It splits the labeled images into train and held-out sides by
//! group (patient) and trains a model on the train side. It computes each image's embedding
//! once (cached on disk under [`RunConfig::cache_dir`]) and scores the unlabeled images with
//! the classification head under Monte Carlo dropout. It clusters their embeddings with linfa
//! k-means so that the first batch is diverse, turns the scores into priorities and pseudolabel
//! proposals, and evaluates the model on the held-out side. [`run_with_split`] does the same
//! with a split chosen by the caller (the offline simulation keeps one test set for all rounds).
//!
//! Two kinds of model, chosen by what [`RunConfig::models_dir`] contains:
//! - no weights: a small CNN trained from scratch ([`network`]). It has three blocks of 3×3
//!   convolution, ReLU and 2×2 max pooling with 16, 32 and 64 channels, and global average
//!   pooling to a 64-value embedding, then a head of dropout and one linear layer;
//! - pretrained weights ([`pretrained`] lists the file names): a candle-transformers ResNet or
//!   ConvNeXt used as a frozen feature extractor (batch norm in evaluation mode), with only
//!   the head trained, on cached embeddings.
//!
//! Training uses AdamW and a cross-entropy weighted by n / (K · n_c) per class c (K the classes
//! present) so that a rare class counts as much as a common one. The from-scratch model also
//! sees random horizontal flips. A frozen backbone's head trains on the cached embeddings of
//! the unflipped images only.
//! The formulas for the scores, the selection and the evaluation live in
//! [`crate::domain::active_learning`]; this module only produces probabilities.
//!
//! Everything random (initial weights, batch order, flips, dropout masks, k-means, the random
//! strategy) draws from generators seeded by [`RunConfig::seed`], so a run on the CPU is
//! repeatable. candle's own CPU random generator cannot be seeded (0.11), which is why the
//! weights and dropout masks are drawn here rather than by `candle_nn`.

mod cache;
mod cluster;
mod images;
mod network;
pub mod pretrained;
mod train;
mod workflow;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::domain::active_learning::{
    CutoffCurve, Evaluation, PrCurve, PrPoint, Proposal, ReliabilityBin, RocPoint, Strategy, StrategyParseError,
};
pub use workflow::{run, run_with_split};

/// Default square side, in pixels, that images are resized to.
pub const DEFAULT_RESOLUTION: u32 = 128;

/// One image with its reference label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledImage {
    pub item_id: i64,
    pub path: PathBuf,
    /// Class index into [`RunConfig::classes`].
    pub class: usize,
    /// Patient pseudonym or another grouping that must not straddle the train / held-out split.
    pub group: Option<String>,
}

/// One image to score.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlabeledImage {
    pub item_id: i64,
    pub path: PathBuf,
}

/// Settings of one training and scoring run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// The field's option values in guideline order, which is the ordinal order.
    pub classes: Vec<String>,
    pub strategy: Strategy,
    /// Side of the square the images are resized to, in pixels.
    pub resolution: u32,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Dropout passes averaged per scored item.
    pub mc_samples: usize,
    /// Share of labeled images held out for evaluation (by group).
    pub holdout_fraction: f64,
    /// Size of the batch spread across embedding clusters; also the number of clusters
    /// (at most the number of distinct unlabeled embeddings).
    pub diversity_batch: usize,
    /// Minimum top-class probability for a pseudolabel proposal.
    pub confidence_threshold: f64,
    pub seed: u64,
    /// Folder searched for pretrained weights; `None` trains from scratch.
    pub models_dir: Option<PathBuf>,
    /// Folder of cached embeddings, one file per image and model.
    pub cache_dir: PathBuf,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            classes: Vec::new(),
            strategy: Strategy::Entropy,
            resolution: DEFAULT_RESOLUTION,
            epochs: 15,
            batch_size: 16,
            learning_rate: 1e-3,
            mc_samples: 20,
            holdout_fraction: 0.2,
            diversity_batch: 20,
            confidence_threshold: 0.9,
            seed: 0,
            models_dir: None,
            cache_dir: std::env::temp_dir().join("quorum-embeddings"),
        }
    }
}

/// The model's view of one unlabeled image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScore {
    pub item_id: i64,
    /// Mean class probabilities over the Monte Carlo dropout passes, in class order.
    pub probabilities: Vec<f64>,
    /// Entropy of `probabilities`, in nats.
    pub entropy: f64,
    /// Top probability minus the second.
    pub margin: f64,
    /// One minus the top probability.
    pub least_confidence: f64,
    /// Mutual information between prediction and weights over the dropout passes, in nats.
    pub bald: f64,
    /// k-means cluster of the embedding; `None` when clustering was skipped because the
    /// unlabeled images have fewer than two distinct embeddings or `diversity_batch` is below 2.
    pub cluster: Option<usize>,
    /// Serving order: higher first. Values are n, n − 1, …, 1 over the n scored images.
    pub priority: f64,
    pub proposal: Option<Proposal>,
    pub embedding: Vec<f32>,
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// `scratch-cnn`, or the pretrained backbone's name such as `resnet18`.
    pub model_kind: String,
    /// sha256 (hex) of the feature extractor's weights and input size; embeddings are cached
    /// under this name.
    pub model_hash: String,
    /// One per unlabeled image, in input order.
    pub scores: Vec<ItemScore>,
    pub evaluation: Evaluation,
    /// Training images processed per second: image passes over all epochs divided by the
    /// training time. For a frozen backbone it is the training images divided by the time to
    /// embed them and train the head.
    pub train_images_per_second: f64,
}

/// Progress of a run: the current stage and the fraction of the whole run done, from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: &'static str,
    pub fraction: f64,
}

/// Failures of a run. Nothing is written except embedding cache files.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error("invalid {field} {value}: {reason}")]
    InvalidConfig { field: &'static str, value: String, reason: String },
    #[error("labeled item {item_id} has class index {class}, but the field has {classes} classes")]
    ClassOutOfRange { item_id: i64, class: usize, classes: usize },
    #[error("cannot split the labeled images into train and held-out sides: {0}")]
    Split(#[from] crate::domain::active_learning::SplitError),
    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("embedding cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
    #[error("pretrained weights {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("k-means clustering of the embeddings failed: {0}")]
    Clustering(String),
    #[error("evaluating on the held-out images failed: {0}")]
    Evaluation(#[from] crate::domain::active_learning::EvaluationError),
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl MlError {
    fn config(field: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        MlError::InvalidConfig { field, value: value.to_string(), reason: reason.into() }
    }
}
