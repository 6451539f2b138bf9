use super::*;

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "got {actual}, expected {expected}");
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|class| class.to_string()).collect()
}

/// Binary case: references 0 0 1 1 with predictions 0 1 1 1.
fn binary() -> Evaluation {
    let probabilities = vec![vec![0.92, 0.08], vec![0.38, 0.62], vec![0.35, 0.65], vec![0.15, 0.85]];
    evaluate(&names(2), 10, &[0, 0, 1, 1], &probabilities).unwrap()
}

/// Ordinal case with three classes: references 0 1 2 2 with predictions 0 1 2 1.
fn ordinal() -> Evaluation {
    let probabilities = vec![
        vec![0.7, 0.2, 0.1],
        vec![0.2, 0.5, 0.3],
        vec![0.1, 0.3, 0.6],
        vec![0.3, 0.4, 0.3],
    ];
    evaluate(&names(3), 8, &[0, 1, 2, 2], &probabilities).unwrap()
}

#[test]
fn binary_accuracy_and_confusion() {
    let evaluation = binary();
    // Correct: items 0, 2, 3 of 4. Recall of class 0 is 1/2, of class 1 is 2/2.
    assert_eq!(evaluation.confusion, vec![vec![1, 1], vec![0, 2]]);
    close(evaluation.accuracy, 0.75);
    close(evaluation.balanced_accuracy, 0.75);
    assert_eq!(evaluation.train_count, 10);
    assert_eq!(evaluation.heldout_count, 4);
}

#[test]
fn binary_kappa() {
    // Reference marginals [2, 2], predicted [1, 3]; observed agreement 3/4, chance
    // (2·1 + 2·3) / 16 = 1/2, kappa = (0.75 − 0.5) / (1 − 0.5) = 0.5. With two classes the
    // quadratic weights equal the unweighted ones.
    close(binary().quadratic_kappa.unwrap(), 0.5);
}

#[test]
fn binary_precision_recall() {
    let evaluation = binary();
    // Class 1 scores 0.85 (pos), 0.65 (pos), 0.62 (neg), 0.08 (neg):
    // precision/recall 1/0.5, 1/1, 2/3/1, 2/4/1; AP = 0.5·1 + 0.5·1 = 1.
    let curve = &evaluation.pr_curves[1];
    assert_eq!(curve.positives, 2);
    let points: Vec<(f64, f64, f64)> = curve.points.iter().map(|p| (p.threshold, p.precision, p.recall)).collect();
    assert_eq!(points.len(), 4);
    close(points[0].0, 0.85);
    close(points[0].1, 1.0);
    close(points[0].2, 0.5);
    close(points[2].1, 2.0 / 3.0);
    close(points[3].1, 0.5);
    close(points[3].2, 1.0);
    close(curve.average_precision.unwrap(), 1.0);
}

#[test]
fn binary_cutoff_roc() {
    let evaluation = binary();
    assert_eq!(evaluation.cutoffs.len(), 1);
    let curve = &evaluation.cutoffs[0];
    assert_eq!((curve.cutoff, curve.positives, curve.negatives), (1, 2, 2));
    // Thresholds 0.85, 0.65, 0.62, 0.08: sensitivity 0.5, 1, 1, 1; specificity 1, 1, 0.5, 0.
    let sensitivity: Vec<f64> = curve.points.iter().map(|p| p.sensitivity.unwrap()).collect();
    let specificity: Vec<f64> = curve.points.iter().map(|p| p.specificity.unwrap()).collect();
    assert_eq!(sensitivity, vec![0.5, 1.0, 1.0, 1.0]);
    assert_eq!(specificity, vec![1.0, 1.0, 0.5, 0.0]);
    // Every positive outscores every negative.
    close(curve.auc.unwrap(), 1.0);
}

#[test]
fn binary_calibration() {
    let evaluation = binary();
    // Top probabilities: 0.92 (right) in bin 9, 0.62 (wrong) and 0.65 (right) in bin 6,
    // 0.85 (right) in bin 8. Gaps: |1 − 0.92| = 0.08, |0.5 − 0.635| = 0.135, |1 − 0.85| = 0.15.
    // ECE = 0.08/4 + 2·0.135/4 + 0.15/4 = 0.02 + 0.0675 + 0.0375 = 0.125.
    close(evaluation.ece, 0.125);
    assert_eq!(evaluation.reliability.len(), CALIBRATION_BINS);
    let bin = evaluation.reliability[6];
    assert_eq!(bin.count, 2);
    close(bin.lower, 0.6);
    close(bin.upper, 0.7);
    close(bin.mean_confidence.unwrap(), 0.635);
    close(bin.accuracy.unwrap(), 0.5);
    assert_eq!(evaluation.reliability[0].count, 0);
    assert_eq!(evaluation.reliability[0].mean_confidence, None);
}

#[test]
fn calibration_top_bin_holds_one() {
    // A probability of exactly 1 falls in the last bin [0.9, 1.0]; accuracy 1, gap 0.
    let evaluation = evaluate(&names(2), 1, &[0], &[vec![1.0, 0.0]]).unwrap();
    assert_eq!(evaluation.reliability[9].count, 1);
    close(evaluation.ece, 0.0);
}

#[test]
fn ordinal_accuracy_and_kappa() {
    let evaluation = ordinal();
    assert_eq!(evaluation.confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]);
    close(evaluation.accuracy, 0.75);
    // Recalls 1, 1, 1/2: balanced accuracy 2.5 / 3.
    close(evaluation.balanced_accuracy, 2.5 / 3.0);
    // Reference marginals a = [1, 1, 2], predicted b = [1, 2, 1], weights (i − j)².
    // Observed Σ w·C = 1 (one item 2 → 1). Expected Σ w·a_i·b_j / n:
    // row 0: 1·1·2 + 4·1·1 = 6; row 1: 1·1·1 + 1·1·1 = 2; row 2: 4·2·1 + 1·2·2 = 12;
    // total 20 / 4 = 5. Kappa = 1 − 1/5 = 0.8.
    close(evaluation.quadratic_kappa.unwrap(), 0.8);
}

#[test]
fn ordinal_cutoffs_with_tie() {
    let evaluation = ordinal();
    assert_eq!(evaluation.cutoffs.len(), 2);

    // Cut-off 1: P(class ≥ 1) = 0.3, 0.8, 0.9, 0.7 with only the first negative.
    let first = &evaluation.cutoffs[0];
    assert_eq!((first.positives, first.negatives), (3, 1));
    close(first.auc.unwrap(), 1.0);
    close(first.points[0].threshold, 0.9);
    close(first.points[0].sensitivity.unwrap(), 1.0 / 3.0);

    // Cut-off 2: P(class ≥ 2) = 0.1 (neg), 0.3 (neg), 0.6 (pos), 0.3 (pos); a tie at 0.3.
    // Points: 0.6 → sens 0.5 spec 1; 0.3 → sens 1 spec 0.5; 0.1 → sens 1 spec 0.
    // ROC (fpr, tpr): (0, 0.5), (0.5, 1), (1, 1); trapezoids 0 + 0.5·1.5/2 + 0.5·1 = 0.875,
    // equal to the Mann-Whitney count (1 + 1 + 1 + 0.5 for the tie) / 4.
    let second = &evaluation.cutoffs[1];
    assert_eq!(second.points.len(), 3);
    close(second.points[1].threshold, 0.3);
    close(second.points[1].sensitivity.unwrap(), 1.0);
    close(second.points[1].specificity.unwrap(), 0.5);
    close(second.auc.unwrap(), 0.875);
}

#[test]
fn class_without_positives() {
    // Class 2 never appears among the references: its curve is empty and AP undefined,
    // and balanced accuracy averages the two classes present (1 and 0.5).
    let probabilities = vec![vec![0.8, 0.1, 0.1], vec![0.6, 0.3, 0.1], vec![0.2, 0.7, 0.1]];
    let evaluation = evaluate(&names(3), 3, &[0, 1, 1], &probabilities).unwrap();
    assert_eq!(evaluation.pr_curves[2].positives, 0);
    assert_eq!(evaluation.pr_curves[2].average_precision, None);
    assert!(evaluation.pr_curves[2].points.is_empty());
    close(evaluation.balanced_accuracy, 0.75);
    // Cut-off 2 has no positives: no AUC, and sensitivity undefined at every point.
    assert_eq!(evaluation.cutoffs[1].auc, None);
    assert!(evaluation.cutoffs[1].points.iter().all(|p| p.sensitivity.is_none()));
}

#[test]
fn kappa_undefined_for_one_class() {
    // Reference and prediction both use only class 1: chance disagreement 0, kappa 0/0.
    let evaluation = evaluate(&names(2), 2, &[1, 1], &[vec![0.1, 0.9], vec![0.3, 0.7]]).unwrap();
    assert_eq!(evaluation.quadratic_kappa, None);
    close(evaluation.accuracy, 1.0);
}

#[test]
fn invalid_inputs_rejected() {
    assert_eq!(evaluate(&names(2), 0, &[], &[]), Err(EvaluationError::Empty));
    assert_eq!(
        evaluate(&names(2), 0, &[0, 1], &[vec![0.5, 0.5]]),
        Err(EvaluationError::LengthMismatch { references: 2, predictions: 1 })
    );
    assert_eq!(
        evaluate(&names(2), 0, &[0], &[vec![1.0]]),
        Err(EvaluationError::WrongWidth { index: 0, found: 1, expected: 2 })
    );
    assert_eq!(
        evaluate(&names(2), 0, &[2], &[vec![0.5, 0.5]]),
        Err(EvaluationError::ClassOutOfRange { index: 0, class: 2, classes: 2 })
    );
}

#[test]
fn prediction_ties_go_to_lower_class() {
    assert_eq!(predicted_class(&[0.4, 0.4, 0.2]), 0);
    assert_eq!(predicted_class(&[0.2, 0.4, 0.4]), 1);
}
