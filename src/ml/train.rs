//! Training loops: the whole from-scratch model on images, or only the head on embeddings.
//!
//! Loss: class-weighted cross-entropy, Σ_i w_{y_i} · (−log softmax(z_i)_{y_i}) / Σ_i w_{y_i},
//! with w_c = n / (K · n_c) over the K classes present in the training labels (the "balanced"
//! weights of scikit-learn). Optimiser: AdamW with candle-nn's defaults apart from the
//! learning rate (β 0.9 / 0.999, weight decay 0.01). Each epoch visits the training items in a
//! seeded random order, in batches of `batch_size`.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::network::{Head, ScratchTrunk};

/// Balanced class weights n / (K · n_c); 0 for a class with no training item.
pub(crate) fn class_weights(labels: &[usize], class_count: usize) -> Vec<f32> {
    let mut counts = vec![0usize; class_count];
    labels.iter().for_each(|&class| counts[class] += 1);
    let present = counts.iter().filter(|&&count| count > 0).count();
    counts
        .iter()
        .map(|&count| if count == 0 { 0.0 } else { labels.len() as f32 / (present * count) as f32 })
        .collect()
}

/// Weighted mean cross-entropy of logits (B, K) against class indices.
pub(crate) fn weighted_cross_entropy(logits: &Tensor, labels: &[usize], weights: &[f32]) -> candle_core::Result<Tensor> {
    let device = logits.device();
    let targets: Vec<u32> = labels.iter().map(|&class| class as u32).collect();
    let targets = Tensor::from_vec(targets, (labels.len(), 1), device)?;
    let sample_weights: Vec<f32> = labels.iter().map(|&class| weights[class]).collect();
    let total_weight: f32 = sample_weights.iter().sum();
    let sample_weights = Tensor::from_vec(sample_weights, labels.len(), device)?;

    let log_probabilities = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_probabilities.gather(&targets, 1)?.squeeze(1)?;
    (picked * sample_weights)?.sum_all()?.neg()? / f64::from(total_weight)
}

/// Training settings shared by both loops.
pub(crate) struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub class_count: usize,
}

fn optimizer(vars: Vec<candle_core::Var>, learning_rate: f64) -> candle_core::Result<AdamW> {
    AdamW::new(vars, ParamsAdamW { lr: learning_rate, ..Default::default() })
}

/// Trains trunk and head end to end on images (each (3, R, R)), flipping each image
/// horizontally with probability 1/2. `on_epoch` gets the number of finished epochs.
pub(crate) fn train_end_to_end(
    trunk: &ScratchTrunk,
    head: &Head,
    images: &[Tensor],
    labels: &[usize],
    settings: &TrainSettings,
    rng: &mut ChaCha8Rng,
    on_epoch: &mut dyn FnMut(usize),
) -> candle_core::Result<()> {
    let vars = trunk.vars().iter().chain(head.vars()).cloned().collect();
    let mut optimizer = optimizer(vars, settings.learning_rate)?;
    let weights = class_weights(labels, settings.class_count);
    let mut order: Vec<usize> = (0..images.len()).collect();

    for epoch in 0..settings.epochs {
        order.shuffle(rng);
        for batch in order.chunks(settings.batch_size) {
            let mut inputs = Vec::with_capacity(batch.len());
            for &index in batch {
                let image = &images[index];
                inputs.push(if rng.random_bool(0.5) { image.flip(&[2])? } else { image.clone() });
            }
            let inputs = Tensor::stack(&inputs, 0)?;
            let batch_labels: Vec<usize> = batch.iter().map(|&index| labels[index]).collect();
            let logits = head.forward_with_dropout(&trunk.forward(&inputs)?, rng)?;
            optimizer.backward_step(&weighted_cross_entropy(&logits, &batch_labels, &weights)?)?;
        }
        on_epoch(epoch + 1);
    }
    Ok(())
}

/// Trains the head alone on fixed embeddings (N, D).
pub(crate) fn train_head(
    head: &Head,
    embeddings: &Tensor,
    labels: &[usize],
    settings: &TrainSettings,
    rng: &mut ChaCha8Rng,
    on_epoch: &mut dyn FnMut(usize),
) -> candle_core::Result<()> {
    let mut optimizer = optimizer(head.vars().to_vec(), settings.learning_rate)?;
    let weights = class_weights(labels, settings.class_count);
    let mut order: Vec<usize> = (0..labels.len()).collect();

    for epoch in 0..settings.epochs {
        order.shuffle(rng);
        for batch in order.chunks(settings.batch_size) {
            let indices: Vec<u32> = batch.iter().map(|&index| index as u32).collect();
            let indices = Tensor::from_vec(indices, batch.len(), embeddings.device())?;
            let inputs = embeddings.index_select(&indices, 0)?;
            let batch_labels: Vec<usize> = batch.iter().map(|&index| labels[index]).collect();
            let logits = head.forward_with_dropout(&inputs, rng)?;
            optimizer.backward_step(&weighted_cross_entropy(&logits, &batch_labels, &weights)?)?;
        }
        on_epoch(epoch + 1);
    }
    Ok(())
}

/// Rows of `embeddings` as one (N, D) tensor.
pub(crate) fn embedding_matrix(embeddings: &[Vec<f32>], device: &Device) -> candle_core::Result<Tensor> {
    let width = embeddings.first().map_or(0, Vec::len);
    let values: Vec<f32> = embeddings.iter().flatten().copied().collect();
    Tensor::from_vec(values, (embeddings.len(), width), device)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_class_weights() {
        // Labels 0 0 0 1: n = 4, K = 2 present; w_0 = 4 / (2·3) = 2/3, w_1 = 4 / (2·1) = 2;
        // class 2 is absent and gets 0.
        let weights = class_weights(&[0, 0, 0, 1], 3);
        assert!((weights[0] - 2.0 / 3.0).abs() < 1e-6);
        assert!((weights[1] - 2.0).abs() < 1e-6);
        assert_eq!(weights[2], 0.0);
    }

    #[test]
    fn cross_entropy_by_hand() {
        // Logits [0, ln 3] give softmax [1/4, 3/4]; [0, 0] give [1/2, 1/2].
        // Labels 1 and 0 with weights w_1 = 2, w_0 = 1:
        // (2 · −ln(3/4) + 1 · −ln(1/2)) / 3 = (0.575364 + 0.693147) / 3 = 0.422837...
        let logits = Tensor::new(&[[0f32, 3f32.ln()], [0.0, 0.0]], &Device::Cpu).unwrap();
        let loss = weighted_cross_entropy(&logits, &[1, 0], &[1.0, 2.0]).unwrap().to_scalar::<f32>().unwrap();
        let expected = (2.0 * -(0.75f64).ln() + -(0.5f64).ln()) / 3.0;
        assert!((f64::from(loss) - expected).abs() < 1e-5, "{loss} vs {expected}");
    }
}
