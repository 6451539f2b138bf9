//! Which unlabeled items graders see first, and which predictions become pseudolabel proposals.
//!
//! A [`Strategy`] turns an item's uncertainty into one score where higher means more
//! informative. [`priorities`] orders the items by that score, except that the first `batch`
//! places go to a [`diverse_batch`]. That batch takes the most uncertain item of each embedding
//! cluster in turn, so one batch does not spend every grade on near-duplicates of one hard image. The priority of
//! an item is n − its position in that order (n items), so the first item gets n, the last 1,
//! and the assignment engine serves `priority DESC`. [`Strategy::Random`] is a seeded random
//! permutation instead, the baseline every other strategy must beat.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Ranking rule for unlabeled items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Entropy of the mean Monte Carlo probabilities.
    Entropy,
    /// Small gap between the top two classes first (score 1 − margin).
    Margin,
    /// Low top probability first (score 1 − p_max).
    LeastConfidence,
    /// Disagreement between Monte Carlo dropout samples (mutual information).
    Bald,
    /// Seeded random order, ignoring the model.
    Random,
}

impl Strategy {
    pub const ALL: [Strategy; 5] =
        [Strategy::Entropy, Strategy::Margin, Strategy::LeastConfidence, Strategy::Bald, Strategy::Random];

    /// Name used on the command line, in the API and in stored runs.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Entropy => "entropy",
            Strategy::Margin => "margin",
            Strategy::LeastConfidence => "least-confidence",
            Strategy::Bald => "bald",
            Strategy::Random => "random",
        }
    }

    /// Informativeness score of one item, higher first; `None` for [`Strategy::Random`].
    pub fn score(self, entropy: f64, margin: f64, least_confidence: f64, bald: f64) -> Option<f64> {
        match self {
            Strategy::Entropy => Some(entropy),
            Strategy::Margin => Some(1.0 - margin),
            Strategy::LeastConfidence => Some(least_confidence),
            Strategy::Bald => Some(bald),
            Strategy::Random => None,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that is not one of [`Strategy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown active-learning strategy {0:?}; use one of entropy, margin, least-confidence, bald, random")]
pub struct StrategyParseError(pub String);

impl FromStr for Strategy {
    type Err = StrategyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.name() == text.trim())
            .ok_or_else(|| StrategyParseError(text.to_string()))
    }
}

/// A suggested label for an unlabeled item, from a confident prediction. It never enters the
/// reference standard unless a lead accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Class index in the field's option order.
    pub class: usize,
    /// Predicted probability of that class.
    pub confidence: f64,
}

/// Proposes the top class when its probability is at least `threshold`. Ties at the top go to
/// the lower class index.
pub fn propose(probabilities: &[f64], threshold: f64) -> Option<Proposal> {
    let (class, confidence) = probabilities
        .iter()
        .copied()
        .enumerate()
        .fold(None, |best: Option<(usize, f64)>, (class, p)| match best {
            Some((_, top)) if top >= p => best,
            _ => Some((class, p)),
        })?;
    (confidence >= threshold).then_some(Proposal { class, confidence })
}

/// Item indices sorted by score, highest first; equal scores keep index order.
fn by_score_descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Picks up to `batch` item indices spread across clusters: clusters are visited in the order
/// of their best score, taking each cluster's next most uncertain item per pass, until the batch
/// is full or every item is taken. `clusters[i]` is item i's cluster label.
///
/// # Panics
/// When `scores` and `clusters` differ in length.
pub fn diverse_batch(scores: &[f64], clusters: &[usize], batch: usize) -> Vec<usize> {
    assert_eq!(scores.len(), clusters.len(), "one cluster label per score");

    // Members of each cluster, best first. The clusters are ordered by their best member, which
    // is the order in which each cluster's first member appears in the global ranking.
    let mut queues: Vec<(usize, Vec<usize>)> = Vec::new();
    for index in by_score_descending(scores) {
        match queues.iter_mut().find(|(label, _)| *label == clusters[index]) {
            Some((_, members)) => members.push(index),
            None => queues.push((clusters[index], vec![index])),
        }
    }

    let target = batch.min(scores.len());
    let mut selected = Vec::with_capacity(target);
    let mut pass = 0;
    while selected.len() < target {
        for (_, members) in &queues {
            if let Some(&index) = members.get(pass) {
                selected.push(index);
                if selected.len() == target {
                    break;
                }
            }
        }
        pass += 1;
    }
    selected
}

/// Priority per item (higher is served first): the diverse batch of size `batch` first, when
/// `clusters` are given, then every other item by score. Values are n, n − 1, …, 1.
pub fn priorities(scores: &[f64], clusters: Option<&[usize]>, batch: usize) -> Vec<f64> {
    let mut order = match clusters {
        Some(clusters) => diverse_batch(scores, clusters, batch),
        None => Vec::new(),
    };
    let mut taken = vec![false; scores.len()];
    order.iter().for_each(|&index| taken[index] = true);
    order.extend(by_score_descending(scores).into_iter().filter(|&index| !taken[index]));
    priorities_from_order(&order)
}

/// Draws a seeded random permutation as priorities n, …, 1; the same seed gives the same order.
pub fn random_priorities(count: usize, seed: u64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    priorities_from_order(&order)
}

fn priorities_from_order(order: &[usize]) -> Vec<f64> {
    let count = order.len();
    let mut priority = vec![0.0; count];
    for (position, &index) in order.iter().enumerate() {
        priority[index] = (count - position) as f64;
    }
    priority
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.to_string().parse::<Strategy>(), Ok(strategy));
        }
        assert_eq!("least-confidence".parse::<Strategy>(), Ok(Strategy::LeastConfidence));
        assert!("uncertainty".parse::<Strategy>().is_err());
    }

    #[test]
    fn strategy_scores() {
        // entropy 0.9, margin 0.3, least confidence 0.4, BALD 0.05.
        assert_eq!(Strategy::Entropy.score(0.9, 0.3, 0.4, 0.05), Some(0.9));
        assert_eq!(Strategy::Margin.score(0.9, 0.3, 0.4, 0.05), Some(0.7));
        assert_eq!(Strategy::LeastConfidence.score(0.9, 0.3, 0.4, 0.05), Some(0.4));
        assert_eq!(Strategy::Bald.score(0.9, 0.3, 0.4, 0.05), Some(0.05));
        assert_eq!(Strategy::Random.score(0.9, 0.3, 0.4, 0.05), None);
    }

    #[test]
    fn proposal_at_threshold() {
        // Top probability 0.9 meets a 0.9 threshold; 0.89 does not.
        assert_eq!(propose(&[0.1, 0.9], 0.9), Some(Proposal { class: 1, confidence: 0.9 }));
        assert_eq!(propose(&[0.11, 0.89], 0.9), None);
        assert_eq!(propose(&[0.95, 0.05], 0.9), Some(Proposal { class: 0, confidence: 0.95 }));
        assert_eq!(propose(&[], 0.5), None);
    }

    #[test]
    fn diverse_batch_round_robin() {
        // Scores by item: 0:0.9 1:0.8 2:0.7 3:0.6 4:0.5 5:0.4, clusters 0 0 0 1 1 2.
        // Cluster order by best score: 0 (0.9), 1 (0.6), 2 (0.4).
        // Pass 1 takes 0, 3, 5; pass 2 takes 1, 4; pass 3 takes 2.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let clusters = [0, 0, 0, 1, 1, 2];
        assert_eq!(diverse_batch(&scores, &clusters, 4), vec![0, 3, 5, 1]);
        assert_eq!(diverse_batch(&scores, &clusters, 10), vec![0, 3, 5, 1, 4, 2]);
        assert!(diverse_batch(&scores, &clusters, 0).is_empty());
    }

    #[test]
    fn diverse_batch_orders_clusters_by_best() {
        // Cluster 7 contains the best item (index 2, 0.95), so it comes before cluster 3.
        let scores = [0.5, 0.6, 0.95, 0.1];
        let clusters = [3, 3, 7, 7];
        assert_eq!(diverse_batch(&scores, &clusters, 3), vec![2, 1, 3]);
    }

    #[test]
    fn priorities_put_batch_first() {
        // Batch of 2 from the example above: items 0 and 3 get 6 and 5; the rest follow by
        // score: 1 (0.8) gets 4, 2 (0.7) 3, 4 (0.5) 2, 5 (0.4) 1.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let clusters = [0, 0, 0, 1, 1, 2];
        assert_eq!(priorities(&scores, Some(&clusters), 2), vec![6.0, 4.0, 3.0, 5.0, 2.0, 1.0]);
        assert_eq!(priorities(&scores, None, 2), vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn random_priorities_are_seeded_permutation() {
        let first = random_priorities(20, 7);
        assert_eq!(first, random_priorities(20, 7));
        assert_ne!(first, random_priorities(20, 8));
        let mut sorted = first.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, (1..=20).map(f64::from).collect::<Vec<_>>());
    }
}
