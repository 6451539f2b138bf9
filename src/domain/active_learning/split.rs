//! The seeded split of labeled items into a training set and a held-out set, by group.
//!
//! Images of one patient look alike, so a model evaluated on an image whose fellow eye it was
//! trained on looks better than it is. The split therefore moves whole groups (patient
//! pseudonyms): no group has items on both sides. Items without a group are each their own
//! group.
//!
//! Stratification is greedy, as far as whole groups allow: the target is
//! round(fraction × n_c) held-out items of each class c, the targets summing to
//! max(1, round(fraction × n)) by largest remainders. Groups are visited in a seeded random
//! order, and a group goes to the held-out side when that brings the held-out class counts
//! closer to the targets (sum of absolute differences). At least one group ends on each side.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Indices into the labeled items, per side, each in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSplit {
    pub train: Vec<usize>,
    pub heldout: Vec<usize>,
}

/// Labeled items that cannot be split.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    #[error("the held-out fraction must be above 0 and below 1, got {0}")]
    InvalidFraction(f64),
    #[error("{groups} distinct group(s) among the labeled items; a train and a held-out side need at least 2")]
    TooFewGroups { groups: usize },
}

/// Splits items given as (group, class) pairs. The same inputs and seed give the same split.
pub fn split_by_group(items: &[(Option<&str>, usize)], holdout_fraction: f64, seed: u64) -> Result<GroupSplit, SplitError> {
    if !(holdout_fraction > 0.0 && holdout_fraction < 1.0) {
        return Err(SplitError::InvalidFraction(holdout_fraction));
    }
    let groups = collect_groups(items);
    if groups.len() < 2 {
        return Err(SplitError::TooFewGroups { groups: groups.len() });
    }
    let class_count = items.iter().map(|&(_, class)| class + 1).max().unwrap_or(0);
    let mut class_totals = vec![0usize; class_count];
    items.iter().for_each(|&(_, class)| class_totals[class] += 1);
    let targets = class_targets(&class_totals, holdout_fraction);

    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));

    let mut held = vec![0usize; class_count];
    let mut heldout_groups = vec![false; groups.len()];
    let distance = |counts: &[usize]| -> usize { counts.iter().zip(&targets).map(|(&h, &t)| h.abs_diff(t)).sum() };
    for &group in &order {
        let mut candidate = held.clone();
        groups[group].iter().for_each(|&index| candidate[items[index].1] += 1);
        if distance(&candidate) < distance(&held) {
            held = candidate;
            heldout_groups[group] = true;
        }
    }

    // Keep both sides non-empty: take the first visited group when nothing was held out, and
    // give the last held-out group back when everything was.
    if !heldout_groups.contains(&true) {
        heldout_groups[order[0]] = true;
    } else if !heldout_groups.contains(&false) {
        let last = *order.iter().rev().find(|&&group| heldout_groups[group]).expect("a group is held out");
        heldout_groups[last] = false;
    }

    let mut split = GroupSplit { train: Vec::new(), heldout: Vec::new() };
    for (group, members) in groups.iter().enumerate() {
        let side = if heldout_groups[group] { &mut split.heldout } else { &mut split.train };
        side.extend(members);
    }
    split.train.sort_unstable();
    split.heldout.sort_unstable();
    Ok(split)
}

/// Item indices per group, groups in order of first appearance.
fn collect_groups(items: &[(Option<&str>, usize)]) -> Vec<Vec<usize>> {
    let mut named: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, &(group, _)) in items.iter().enumerate() {
        match group.and_then(|name| named.get(name).copied()) {
            Some(position) => groups[position].push(index),
            None => {
                if let Some(name) = group {
                    named.insert(name, groups.len());
                }
                groups.push(vec![index]);
            }
        }
    }
    groups
}

/// Held-out target per class: fraction × count, rounded by largest remainders so that the
/// targets sum to max(1, round(fraction × total)).
fn class_targets(class_totals: &[usize], fraction: f64) -> Vec<usize> {
    let total: usize = class_totals.iter().sum();
    let wanted = ((fraction * total as f64).round() as usize).max(1);
    let exact: Vec<f64> = class_totals.iter().map(|&count| fraction * count as f64).collect();
    let mut targets: Vec<usize> = exact.iter().map(|value| value.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..class_totals.len()).collect();
    by_remainder.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut missing = wanted.saturating_sub(targets.iter().sum());
    for class in by_remainder {
        if missing == 0 {
            break;
        }
        if targets[class] < class_totals[class] {
            targets[class] += 1;
            missing -= 1;
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_by_largest_remainder() {
        // 0.2 × [26, 28] = [5.2, 5.6]: floors [5, 5], round(0.2 × 54) = 11, so the larger
        // remainder (class 1) gets the extra item: [5, 6].
        assert_eq!(class_targets(&[26, 28], 0.2), vec![5, 6]);
        // 0.2 × [2, 3] = [0.4, 0.6]: floors [0, 0], round(1.0) = 1 goes to class 1.
        assert_eq!(class_targets(&[2, 3], 0.2), vec![0, 1]);
    }

    #[test]
    fn ungrouped_items_are_stratified() {
        // 20 items, 10 per class, no groups: targets 2 and 2, reached exactly because every
        // item is its own group.
        let items: Vec<(Option<&str>, usize)> = (0..20).map(|i| (None, i % 2)).collect();
        let split = split_by_group(&items, 0.2, 3).unwrap();
        assert_eq!(split.heldout.len(), 4);
        assert_eq!(split.heldout.iter().filter(|&&i| items[i].1 == 1).count(), 2);
        assert_eq!(split.train.len(), 16);
    }

    #[test]
    fn group_never_on_both_sides() {
        // 60 items in 17 patients of varied size, two classes, over 200 seeds.
        let names: Vec<String> = (0..17).map(|g| format!("patient-{g}")).collect();
        let items: Vec<(Option<&str>, usize)> = (0..60)
            .map(|i| {
                let group = if i % 11 == 0 { None } else { Some(names[(i * 7) % 17].as_str()) };
                (group, usize::from(i % 3 == 0))
            })
            .collect();
        for seed in 0..200 {
            let split = split_by_group(&items, 0.25, seed).unwrap();
            assert_eq!(split.train.len() + split.heldout.len(), items.len(), "seed {seed}");
            assert!(!split.train.is_empty(), "seed {seed}");
            assert!(!split.heldout.is_empty(), "seed {seed}");
            for &held in &split.heldout {
                if let Some(group) = items[held].0 {
                    let leaked = split.train.iter().any(|&trained| items[trained].0 == Some(group));
                    assert!(!leaked, "seed {seed}: {group} is on both sides");
                }
            }
        }
    }

    #[test]
    fn split_is_seeded() {
        let items: Vec<(Option<&str>, usize)> = (0..30).map(|i| (None, i % 3)).collect();
        assert_eq!(split_by_group(&items, 0.3, 5), split_by_group(&items, 0.3, 5));
        let differs = (0..10).any(|seed| split_by_group(&items, 0.3, seed) != split_by_group(&items, 0.3, 5));
        assert!(differs);
    }

    #[test]
    fn one_big_group_still_splits() {
        // Patient a has 9 of 10 items: holding it out overshoots the target of 2, so it stays
        // in training and the ungrouped item is held out.
        let mut items: Vec<(Option<&str>, usize)> = (0..9).map(|i| (Some("a"), i % 2)).collect();
        items.push((None, 0));
        let split = split_by_group(&items, 0.2, 1).unwrap();
        assert_eq!(split.heldout, vec![9]);
    }

    #[test]
    fn invalid_splits_rejected() {
        let items = [(Some("a"), 0), (Some("a"), 1)];
        assert_eq!(split_by_group(&items, 0.2, 0), Err(SplitError::TooFewGroups { groups: 1 }));
        assert_eq!(split_by_group(&[(None, 0), (None, 1)], 0.0, 0), Err(SplitError::InvalidFraction(0.0)));
        assert_eq!(split_by_group(&[(None, 0), (None, 1)], 1.0, 0), Err(SplitError::InvalidFraction(1.0)));
        // Two ungrouped items are two groups: one per side.
        let split = split_by_group(&[(None, 0), (None, 1)], 0.5, 0).unwrap();
        assert_eq!((split.train.len(), split.heldout.len()), (1, 1));
    }
}
