//! The from-scratch CNN trunk and the classification head shared by every model kind.
//!
//! Trunk, for input (B, 3, R, R): three blocks of [3×3 convolution with padding 1, ReLU, 2×2
//! max pooling] with 16, 32 and 64 output channels, then the mean over the spatial positions:
//! an embedding of shape (B, 64). R must be at least 8 (three halvings). No batch norm, so
//! training and inference compute the same function and embeddings can be cached.
//!
//! Head, for embeddings (B, D): inverted dropout with rate [`HEAD_DROPOUT`] (kept values scaled
//! by 1 / (1 − rate)), then a linear layer to K logits. Dropout stays on at scoring time, which
//! makes each pass one Monte Carlo sample (Gal and Ghahramani 2016).
//!
//! Weights are drawn from a seeded generator: He-uniform, bound √(6 / fan_in), for the
//! convolutions (He et al. 2015), and uniform with bound 1 / √fan_in for the head's linear
//! layer (PyTorch's default); biases start at 0.

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// Output channels of the three convolution blocks; the last is the embedding width.
pub(crate) const CHANNELS: [usize; 3] = [16, 32, 64];
/// Dropout rate of the head, in training and in Monte Carlo scoring.
pub(crate) const HEAD_DROPOUT: f64 = 0.3;
/// Smallest input side the trunk accepts: three 2×2 poolings need 8 pixels.
pub(crate) const MIN_RESOLUTION: u32 = 8;

fn uniform_var(shape: &[usize], bound: f64, rng: &mut ChaCha8Rng, device: &Device) -> candle_core::Result<Var> {
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| rng.random_range(-bound..bound) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

fn zero_var(size: usize, device: &Device) -> candle_core::Result<Var> {
    Var::zeros(size, DType::F32, device)
}

/// The three-block CNN of the from-scratch model.
pub(crate) struct ScratchTrunk {
    convolutions: Vec<Conv2d>,
    vars: Vec<Var>,
}

impl ScratchTrunk {
    pub fn new(rng: &mut ChaCha8Rng, device: &Device) -> candle_core::Result<Self> {
        let mut convolutions = Vec::new();
        let mut vars = Vec::new();
        let mut input_channels = 3;
        for output_channels in CHANNELS {
            let fan_in = (input_channels * 9) as f64;
            let weight = uniform_var(&[output_channels, input_channels, 3, 3], (6.0 / fan_in).sqrt(), rng, device)?;
            let bias = zero_var(output_channels, device)?;
            let config = Conv2dConfig { padding: 1, ..Default::default() };
            convolutions.push(Conv2d::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), config));
            vars.push(weight);
            vars.push(bias);
            input_channels = output_channels;
        }
        Ok(Self { convolutions, vars })
    }

    /// Returns the trainable parameters, in a fixed order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Embeddings (B, 64) of images (B, 3, R, R).
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = images.clone();
        for convolution in &self.convolutions {
            x = convolution.forward(&x)?.relu()?.max_pool2d(2)?;
        }
        x.mean(D::Minus1)?.mean(D::Minus1)
    }

    /// sha256 (hex) of the architecture, the input side and every weight value.
    pub fn hash(&self, resolution: u32) -> candle_core::Result<String> {
        let mut hasher = Sha256::new();
        hasher.update(format!("scratch-cnn {CHANNELS:?} {resolution}px").as_bytes());
        for var in &self.vars {
            for value in var.as_tensor().flatten_all()?.to_vec1::<f32>()? {
                hasher.update(value.to_le_bytes());
            }
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// Dropout and a linear layer from embeddings to class logits.
pub(crate) struct Head {
    linear: Linear,
    vars: Vec<Var>,
}

impl Head {
    pub fn new(embedding_width: usize, classes: usize, rng: &mut ChaCha8Rng, device: &Device) -> candle_core::Result<Self> {
        let bound = 1.0 / (embedding_width as f64).sqrt();
        let weight = uniform_var(&[classes, embedding_width], bound, rng, device)?;
        let bias = zero_var(classes, device)?;
        let linear = Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
        Ok(Self { linear, vars: vec![weight, bias] })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Logits (B, K) of embeddings (B, D) with a fresh dropout mask drawn from `rng`.
    pub fn forward_with_dropout(&self, embeddings: &Tensor, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
        let mask = dropout_mask(embeddings.dims2()?, HEAD_DROPOUT, rng, embeddings.device())?;
        self.linear.forward(&(embeddings * mask)?)
    }
}

/// Inverted-dropout mask: each value is 0 with probability `rate`, else 1 / (1 − rate).
fn dropout_mask(shape: (usize, usize), rate: f64, rng: &mut ChaCha8Rng, device: &Device) -> candle_core::Result<Tensor> {
    let keep = (1.0 / (1.0 - rate)) as f32;
    let values: Vec<f32> = (0..shape.0 * shape.1).map(|_| if rng.random_bool(rate) { 0.0 } else { keep }).collect();
    Tensor::from_vec(values, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn trunk_embedding_shape_and_seed() {
        let device = Device::Cpu;
        let images = Tensor::ones((2, 3, 16, 16), DType::F32, &device).unwrap();
        let first = ScratchTrunk::new(&mut ChaCha8Rng::seed_from_u64(1), &device).unwrap();
        let again = ScratchTrunk::new(&mut ChaCha8Rng::seed_from_u64(1), &device).unwrap();
        let other = ScratchTrunk::new(&mut ChaCha8Rng::seed_from_u64(2), &device).unwrap();
        assert_eq!(first.forward(&images).unwrap().dims(), &[2, CHANNELS[2]]);
        assert_eq!(first.hash(16).unwrap(), again.hash(16).unwrap());
        assert_ne!(first.hash(16).unwrap(), other.hash(16).unwrap());
        assert_ne!(first.hash(16).unwrap(), first.hash(32).unwrap());
    }

    #[test]
    fn dropout_mask_values_and_rate() {
        // With rate 0.3, kept values are 1 / 0.7 = 1.428571...; about 30 % of 10,000 are 0.
        let mask = dropout_mask((100, 100), 0.3, &mut ChaCha8Rng::seed_from_u64(0), &Device::Cpu).unwrap();
        let values = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let zeros = values.iter().filter(|&&v| v == 0.0).count();
        assert!((2700..3300).contains(&zeros), "{zeros} zeros");
        assert!(values.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    }
}
