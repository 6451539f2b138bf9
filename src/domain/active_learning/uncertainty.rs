//! Uncertainty of one item's predicted class distribution.
//!
//! With p the class probabilities (summing to 1):
//! - entropy H(p) = −Σ p_c ln p_c, in nats, with 0 ln 0 = 0 (Shannon 1948);
//! - margin = p_(1) − p_(2), the gap between the two largest probabilities (small is uncertain);
//! - least confidence = 1 − p_(1);
//! - BALD (Houlsby et al. 2011, "Bayesian Active Learning for Classification and Preference
//!   Learning") from T Monte Carlo dropout samples p^t: H(mean_t p^t) − mean_t H(p^t), the
//!   mutual information between the prediction and the model weights. It is high when the
//!   samples disagree with each other, not merely when each sample is unsure.

/// Shannon entropy in nats; zero probabilities contribute nothing.
pub fn entropy(probabilities: &[f64]) -> f64 {
    probabilities.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum()
}

/// The two largest probabilities, the second 0 when there is only one class.
fn top_two(probabilities: &[f64]) -> (f64, f64) {
    let mut first = f64::NEG_INFINITY;
    let mut second = f64::NEG_INFINITY;
    for &p in probabilities {
        if p > first {
            second = first;
            first = p;
        } else if p > second {
            second = p;
        }
    }
    (first.max(0.0), second.max(0.0))
}

/// Top probability minus the second; 1 means certain, 0 means a tie between the top two.
pub fn margin(probabilities: &[f64]) -> f64 {
    let (first, second) = top_two(probabilities);
    first - second
}

/// One minus the top probability.
pub fn least_confidence(probabilities: &[f64]) -> f64 {
    1.0 - top_two(probabilities).0
}

/// Class-wise mean of Monte Carlo samples, each a probability vector of the same length.
/// An empty sample list gives an empty vector.
pub fn mean_probabilities(samples: &[Vec<f64>]) -> Vec<f64> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    let mut mean = vec![0.0; first.len()];
    for sample in samples {
        for (total, p) in mean.iter_mut().zip(sample) {
            *total += p;
        }
    }
    let count = samples.len() as f64;
    mean.iter_mut().for_each(|total| *total /= count);
    mean
}

/// BALD mutual information of Monte Carlo samples, in nats. It is never negative in exact
/// arithmetic (entropy is concave), so rounding below zero is clamped to 0. No samples give 0.
pub fn bald(samples: &[Vec<f64>]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mean_entropy = samples.iter().map(|sample| entropy(sample)).sum::<f64>() / samples.len() as f64;
    (entropy(&mean_probabilities(samples)) - mean_entropy).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "got {actual}, expected {expected}");
    }

    #[test]
    fn entropy_of_half_quarter_quarter() {
        // −(0.5 ln 0.5 + 2 × 0.25 ln 0.25) = 0.5 ln 2 + 0.5 × 2 ln 2 = 1.5 ln 2 = 1.039720770839...
        close(entropy(&[0.5, 0.25, 0.25]), 1.5 * 2f64.ln());
        close(entropy(&[0.5, 0.25, 0.25]), 1.039_720_770_839_917_9);
    }

    #[test]
    fn entropy_of_certain_and_uniform() {
        // A one-hot vector has entropy 0 (0 ln 0 counts as 0); uniform over 4 classes is ln 4.
        close(entropy(&[0.0, 1.0, 0.0]), 0.0);
        close(entropy(&[0.25; 4]), 4f64.ln());
    }

    #[test]
    fn margin_and_least_confidence() {
        // [0.5, 0.25, 0.25]: margin 0.5 − 0.25 = 0.25, least confidence 1 − 0.5 = 0.5.
        close(margin(&[0.5, 0.25, 0.25]), 0.25);
        close(least_confidence(&[0.5, 0.25, 0.25]), 0.5);
        // Order does not matter: [0.1, 0.6, 0.3] gives 0.6 − 0.3 = 0.3 and 1 − 0.6 = 0.4.
        close(margin(&[0.1, 0.6, 0.3]), 0.3);
        close(least_confidence(&[0.1, 0.6, 0.3]), 0.4);
        // A tie at the top has margin 0.
        close(margin(&[0.4, 0.4, 0.2]), 0.0);
    }

    #[test]
    fn bald_of_disagreeing_samples() {
        // Samples [1, 0] and [0, 1]: each has entropy 0, their mean [0.5, 0.5] has ln 2,
        // so BALD = ln 2 − 0 = 0.693147...
        close(bald(&[vec![1.0, 0.0], vec![0.0, 1.0]]), 2f64.ln());
    }

    #[test]
    fn bald_of_agreeing_samples_is_zero() {
        // Identical samples: H(mean) equals the mean of H, so BALD = 0 however unsure they are.
        close(bald(&[vec![0.5, 0.5], vec![0.5, 0.5], vec![0.5, 0.5]]), 0.0);
    }

    #[test]
    fn bald_of_partly_disagreeing_samples() {
        // Samples [0.8, 0.2] and [0.4, 0.6]: mean [0.6, 0.4].
        // H(mean) = −(0.6 ln 0.6 + 0.4 ln 0.4) = 0.673011667...
        // H([0.8, 0.2]) = 0.500402423..., H([0.4, 0.6]) = 0.673011667...; their mean 0.586707045...
        // BALD = 0.673011667 − 0.586707045 = 0.086304622...
        let h_mean = -(0.6 * 0.6f64.ln() + 0.4 * 0.4f64.ln());
        let h_first = -(0.8 * 0.8f64.ln() + 0.2 * 0.2f64.ln());
        close(bald(&[vec![0.8, 0.2], vec![0.4, 0.6]]), h_mean - (h_first + h_mean) / 2.0);
        assert!((bald(&[vec![0.8, 0.2], vec![0.4, 0.6]]) - 0.086_304_622).abs() < 1e-8);
    }

    #[test]
    fn mean_of_samples() {
        // ([0.8, 0.2] + [0.4, 0.6]) / 2 = [0.6, 0.4].
        let mean = mean_probabilities(&[vec![0.8, 0.2], vec![0.4, 0.6]]);
        close(mean[0], 0.6);
        close(mean[1], 0.4);
        assert!(mean_probabilities(&[]).is_empty());
    }
}
