//! How well a classifier's probabilities match the reference labels of held-out items.
//!
//! The predicted class is the most probable one (ties go to the lower index). Reported:
//! - accuracy, and balanced accuracy (mean recall over the classes present in the reference);
//! - quadratic weighted kappa between reference and prediction over the declared classes
//!   (Cohen 1968, computed by the crate's agreement code, as scikit-learn's
//!   `cohen_kappa_score(weights="quadratic")`);
//! - the confusion matrix, rows reference and columns prediction;
//! - per class, the one-vs-rest precision-recall curve with a point at every distinct score
//!   (an item is called positive when its score is at least the threshold), and the average
//!   precision Σ (R_k − R_{k−1}) P_k over those points (scikit-learn's step-wise definition);
//! - per ordinal cut-off k = 1..K−1, with "positive" meaning class ≥ k and score
//!   P(class ≥ k) = Σ_{c ≥ k} p_c: sensitivity and specificity at every distinct score, and the
//!   area under that ROC curve by the trapezoidal rule (ties handled, as each distinct score is
//!   one point);
//! - the expected calibration error over 10 equal-width bins of the top probability,
//!   ECE = Σ_b (n_b / n) |accuracy_b − mean confidence_b| (Naeini et al. 2015; Guo et al.
//!   2017), with the bins themselves for a reliability diagram. Bin b contains confidences in
//!   [b/10, (b+1)/10), the last bin also 1.0.

use serde::{Deserialize, Serialize};

use crate::domain::agreement::{ConfusionMatrix, Weighting};

/// Number of equal-width confidence bins for calibration.
pub const CALIBRATION_BINS: usize = 10;

/// A classifier's results on held-out items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The field's option values in guideline (ordinal) order; indices below refer to these.
    pub classes: Vec<String>,
    /// Items the model was trained on.
    pub train_count: usize,
    /// Held-out items evaluated here.
    pub heldout_count: usize,
    /// Share of held-out items whose predicted class equals the reference.
    pub accuracy: f64,
    /// Mean recall over the classes present among the held-out references.
    pub balanced_accuracy: f64,
    /// Quadratic weighted kappa; `None` when undefined (reference and prediction both use one
    /// and the same class).
    pub quadratic_kappa: Option<f64>,
    /// Counts with rows = reference class, columns = predicted class.
    pub confusion: Vec<Vec<u64>>,
    /// One-vs-rest precision-recall curve per class, in class order.
    pub pr_curves: Vec<PrCurve>,
    /// Sensitivity and specificity per ordinal cut-off k = 1..K−1.
    pub cutoffs: Vec<CutoffCurve>,
    /// Expected calibration error of the top probability.
    pub ece: f64,
    /// The calibration bins behind [`Evaluation::ece`], all [`CALIBRATION_BINS`] of them.
    pub reliability: Vec<ReliabilityBin>,
}

/// One-vs-rest precision-recall curve of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    pub class: usize,
    /// Held-out items whose reference is this class.
    pub positives: u64,
    /// Average precision; `None` when the class has no held-out positives.
    pub average_precision: Option<f64>,
    /// One point per distinct score, highest threshold first; empty without positives.
    pub points: Vec<PrPoint>,
}

/// Precision and recall when items with P(class) ≥ `threshold` are called positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
}

/// Referable-or-not analysis at one ordinal cut-off: positive means class index ≥ `cutoff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffCurve {
    /// The lowest class index counted as positive (1..K−1).
    pub cutoff: usize,
    pub positives: u64,
    pub negatives: u64,
    /// Area under the ROC curve; `None` unless both positives and negatives are held out.
    pub auc: Option<f64>,
    /// One point per distinct score P(class ≥ cutoff), highest threshold first.
    pub points: Vec<RocPoint>,
}

/// Sensitivity and specificity when items with P(class ≥ cutoff) ≥ `threshold` are positive.
/// A rate whose denominator is 0 is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// One equal-width bin of top-class confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean top probability in the bin; `None` when the bin is empty.
    pub mean_confidence: Option<f64>,
    /// Share of the bin's items predicted correctly; `None` when the bin is empty.
    pub accuracy: Option<f64>,
}

/// Inputs that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluationError {
    #[error("no held-out items to evaluate")]
    Empty,
    #[error("{references} reference labels but {predictions} probability vectors")]
    LengthMismatch { references: usize, predictions: usize },
    #[error("held-out item {index}: {found} probabilities, expected one per class ({expected})")]
    WrongWidth { index: usize, found: usize, expected: usize },
    #[error("held-out item {index}: reference class {class} is not below the class count {classes}")]
    ClassOutOfRange { index: usize, class: usize, classes: usize },
}

/// Index of the largest probability, the lower index on ties.
pub fn predicted_class(probabilities: &[f64]) -> usize {
    let mut best = 0;
    for (class, &p) in probabilities.iter().enumerate() {
        if p > probabilities[best] {
            best = class;
        }
    }
    best
}

/// Evaluates mean class probabilities (`probabilities[i]`, one per class) against reference
/// classes (`references[i]`) of the held-out items.
pub fn evaluate(
    classes: &[String],
    train_count: usize,
    references: &[usize],
    probabilities: &[Vec<f64>],
) -> Result<Evaluation, EvaluationError> {
    check_inputs(classes.len(), references, probabilities)?;
    let class_count = classes.len();
    let predictions: Vec<usize> = probabilities.iter().map(|p| predicted_class(p)).collect();

    let mut confusion = vec![vec![0u64; class_count]; class_count];
    for (&reference, &prediction) in references.iter().zip(&predictions) {
        confusion[reference][prediction] += 1;
    }
    let n = references.len() as f64;
    let correct: u64 = (0..class_count).map(|class| confusion[class][class]).sum();

    let table = ConfusionMatrix { counts: confusion.clone(), n_items: references.len() as u64 };
    let quadratic_kappa = table.kappa(Weighting::Quadratic).ok();

    let pr_curves = (0..class_count)
        .map(|class| {
            let scores: Vec<f64> = probabilities.iter().map(|p| p[class]).collect();
            let positive: Vec<bool> = references.iter().map(|&reference| reference == class).collect();
            pr_curve(class, &scores, &positive)
        })
        .collect();

    let cutoffs = (1..class_count)
        .map(|cutoff| {
            let scores: Vec<f64> = probabilities.iter().map(|p| p[cutoff..].iter().sum()).collect();
            let positive: Vec<bool> = references.iter().map(|&reference| reference >= cutoff).collect();
            roc_curve(cutoff, &scores, &positive)
        })
        .collect();

    let (ece, reliability) = calibration(references, probabilities, &predictions);

    Ok(Evaluation {
        classes: classes.to_vec(),
        train_count,
        heldout_count: references.len(),
        accuracy: correct as f64 / n,
        balanced_accuracy: balanced_accuracy(&confusion),
        quadratic_kappa,
        confusion,
        pr_curves,
        cutoffs,
        ece,
        reliability,
    })
}

fn check_inputs(class_count: usize, references: &[usize], probabilities: &[Vec<f64>]) -> Result<(), EvaluationError> {
    if references.is_empty() {
        return Err(EvaluationError::Empty);
    }
    if references.len() != probabilities.len() {
        return Err(EvaluationError::LengthMismatch { references: references.len(), predictions: probabilities.len() });
    }
    for (index, (&class, p)) in references.iter().zip(probabilities).enumerate() {
        if p.len() != class_count {
            return Err(EvaluationError::WrongWidth { index, found: p.len(), expected: class_count });
        }
        if class >= class_count {
            return Err(EvaluationError::ClassOutOfRange { index, class, classes: class_count });
        }
    }
    Ok(())
}

fn balanced_accuracy(confusion: &[Vec<u64>]) -> f64 {
    let recalls: Vec<f64> = confusion
        .iter()
        .enumerate()
        .filter_map(|(class, row)| {
            let total: u64 = row.iter().sum();
            (total > 0).then(|| row[class] as f64 / total as f64)
        })
        .collect();
    recalls.iter().sum::<f64>() / recalls.len() as f64
}

/// Distinct scores, highest first, each with the positives and negatives scored exactly there.
fn score_steps(scores: &[f64], positive: &[bool]) -> Vec<(f64, u64, u64)> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut steps: Vec<(f64, u64, u64)> = Vec::new();
    for (score, is_positive) in pairs {
        match steps.last_mut() {
            Some(last) if last.0 == score => {}
            _ => steps.push((score, 0, 0)),
        }
        let last = steps.last_mut().expect("a step was just pushed");
        if is_positive {
            last.1 += 1;
        } else {
            last.2 += 1;
        }
    }
    steps
}

fn pr_curve(class: usize, scores: &[f64], positive: &[bool]) -> PrCurve {
    let positives = positive.iter().filter(|&&p| p).count() as u64;
    if positives == 0 {
        return PrCurve { class, positives, average_precision: None, points: Vec::new() };
    }
    let mut points = Vec::new();
    let mut average_precision = 0.0;
    let (mut true_positives, mut false_positives, mut previous_recall) = (0u64, 0u64, 0.0);
    for (threshold, step_positives, step_negatives) in score_steps(scores, positive) {
        true_positives += step_positives;
        false_positives += step_negatives;
        let precision = true_positives as f64 / (true_positives + false_positives) as f64;
        let recall = true_positives as f64 / positives as f64;
        average_precision += (recall - previous_recall) * precision;
        previous_recall = recall;
        points.push(PrPoint { threshold, precision, recall });
    }
    PrCurve { class, positives, average_precision: Some(average_precision), points }
}

fn roc_curve(cutoff: usize, scores: &[f64], positive: &[bool]) -> CutoffCurve {
    let positives = positive.iter().filter(|&&p| p).count() as u64;
    let negatives = positive.len() as u64 - positives;
    let rate = |count: u64, total: u64| (total > 0).then(|| count as f64 / total as f64);

    let mut points = Vec::new();
    let (mut true_positives, mut false_positives) = (0u64, 0u64);
    let mut area = 0.0;
    let (mut previous_tpr, mut previous_fpr) = (0.0, 0.0);
    for (threshold, step_positives, step_negatives) in score_steps(scores, positive) {
        true_positives += step_positives;
        false_positives += step_negatives;
        let sensitivity = rate(true_positives, positives);
        let specificity = rate(negatives - false_positives, negatives);
        if let (Some(tpr), Some(tnr)) = (sensitivity, specificity) {
            let fpr = 1.0 - tnr;
            area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
            previous_tpr = tpr;
            previous_fpr = fpr;
        }
        points.push(RocPoint { threshold, sensitivity, specificity });
    }
    let auc = (positives > 0 && negatives > 0).then_some(area);
    CutoffCurve { cutoff, positives, negatives, auc, points }
}

fn calibration(references: &[usize], probabilities: &[Vec<f64>], predictions: &[usize]) -> (f64, Vec<ReliabilityBin>) {
    let mut counts = [0u64; CALIBRATION_BINS];
    let mut confidence_sums = [0.0; CALIBRATION_BINS];
    let mut correct = [0u64; CALIBRATION_BINS];
    for ((&reference, p), &prediction) in references.iter().zip(probabilities).zip(predictions) {
        let confidence = p[prediction];
        let bin = ((confidence * CALIBRATION_BINS as f64).floor().max(0.0) as usize).min(CALIBRATION_BINS - 1);
        counts[bin] += 1;
        confidence_sums[bin] += confidence;
        correct[bin] += u64::from(reference == prediction);
    }

    let n = references.len() as f64;
    let mut ece = 0.0;
    let mut bins = Vec::with_capacity(CALIBRATION_BINS);
    for bin in 0..CALIBRATION_BINS {
        let (mut mean_confidence, mut accuracy) = (None, None);
        if counts[bin] > 0 {
            let count = counts[bin] as f64;
            let confidence = confidence_sums[bin] / count;
            let share_correct = correct[bin] as f64 / count;
            ece += count / n * (share_correct - confidence).abs();
            mean_confidence = Some(confidence);
            accuracy = Some(share_correct);
        }
        bins.push(ReliabilityBin {
            lower: bin as f64 / CALIBRATION_BINS as f64,
            upper: (bin + 1) as f64 / CALIBRATION_BINS as f64,
            count: counts[bin],
            mean_confidence,
            accuracy,
        });
    }
    (ece, bins)
}

#[cfg(test)]
mod tests;
