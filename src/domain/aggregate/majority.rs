//! Majority vote and Wawa, with crowd-kit 1.4.2's scoring of raters.
//!
//! Majority vote counts the responses for each label of an item and suggests the most
//! frequent one. Wawa weights each response by its rater's agreement with the majority vote
//! and suggests the label with the largest weight sum. Both break ties towards the
//! earliest modeled category.
//!
//! A rater's agreement is the share of their distinct (item, label) responses that equal
//! the item's majority label. Identical repeated responses of one rater to one item count
//! once there, because crowd-kit drops duplicate (task, worker, label) rows before scoring.
//! The votes themselves count every response.

use super::{first_max, Responses};

/// Majority label of each item as a declared category index, `None` for unrated items.
pub fn majority_vote(responses: &Responses) -> Vec<Option<usize>> {
    let labels = weighted_vote(responses, None);
    to_declared(responses, &labels)
}

/// Computes each rater's agreement with the majority vote, `None` for raters without responses.
pub fn majority_vote_rater_agreement(responses: &Responses) -> Vec<Option<f64>> {
    let labels = weighted_vote(responses, None);
    agreement_with(responses, &labels)
}

/// Result of [`wawa`].
#[derive(Debug, Clone, PartialEq)]
pub struct Wawa {
    /// Suggested label of each item as a declared category index, `None` for unrated items.
    pub labels: Vec<Option<usize>>,
    /// Weight of each rater: their agreement with the majority vote, `None` without responses.
    pub rater_weights: Vec<Option<f64>>,
}

/// Weighs each rater by their agreement with the majority vote, then takes a weighted vote.
pub fn wawa(responses: &Responses) -> Wawa {
    let majority = weighted_vote(responses, None);
    let rater_weights = agreement_with(responses, &majority);

    // A rater without responses never votes, so the weight 0 that replaces `None` is never used.
    let weights: Vec<f64> = rater_weights.iter().map(|weight| weight.unwrap_or(0.0)).collect();
    let labels = weighted_vote(responses, Some(&weights));

    Wawa { labels: to_declared(responses, &labels), rater_weights }
}

/// Suggests per item the modeled label with the largest count, or weight sum when `weights` is given.
fn weighted_vote(responses: &Responses, weights: Option<&[f64]>) -> Vec<Option<u32>> {
    let n_labels = responses.categories_modeled.len();
    let mut scores = vec![0.0; n_labels];
    let mut labels = Vec::with_capacity(responses.n_items);

    for item in 0..responses.n_items {
        let range = responses.item_range(item);
        if range.is_empty() {
            labels.push(None);
            continue;
        }

        scores.fill(0.0);
        for response in range {
            let vote = match weights {
                Some(weights) => weights[responses.raters[response] as usize],
                None => 1.0,
            };
            scores[responses.labels[response] as usize] += vote;
        }
        labels.push(Some(first_max(&scores) as u32));
    }
    labels
}

/// Share of each rater's distinct (item, label) responses that equal `labels` of the item.
fn agreement_with(responses: &Responses, labels: &[Option<u32>]) -> Vec<Option<f64>> {
    let n_labels = responses.categories_modeled.len();
    let mut agreeing = vec![0usize; responses.n_raters];
    let mut scored = vec![0usize; responses.n_raters];

    // `last_item[rater * n_labels + label]` is 1 + the last item where that pair was scored,
    // which skips repeated identical responses without clearing a table per item.
    let mut last_item = vec![0usize; responses.n_raters * n_labels];

    for (item, label) in labels.iter().enumerate() {
        let Some(label) = *label else { continue };
        for response in responses.item_range(item) {
            let rater = responses.raters[response] as usize;
            let rated_label = responses.labels[response];
            let pair = rater * n_labels + rated_label as usize;
            if last_item[pair] == item + 1 {
                continue;
            }
            last_item[pair] = item + 1;

            scored[rater] += 1;
            if rated_label == label {
                agreeing[rater] += 1;
            }
        }
    }

    agreeing.iter().zip(&scored).map(|(&agree, &total)| (total > 0).then(|| agree as f64 / total as f64)).collect()
}

/// Maps modeled label indices back to declared category indices.
fn to_declared(responses: &Responses, labels: &[Option<u32>]) -> Vec<Option<usize>> {
    labels.iter().map(|label| label.map(|index| responses.categories_modeled[index as usize])).collect()
}
