//! Breakdowns of one field's agreement: by rater pair, by rater against the reference
//! standard, by item metadata, and round 0 against the final labels.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::agreement::{self, Undefined, Weighting};
use crate::domain::ratings::RatingMatrix;

use super::{field_matrix, pick, Estimate, FieldMatrix, FieldScale, RoundSelection, StudyRatings};

/// Metadata columns with more distinct values than this are not broken down (ids, dates).
pub const MAX_SUBGROUPS: usize = 20;

/// Cohen's kappa for every pair of raters, in the order of the report's `raters`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairwise {
    pub weighting: Weighting,
    /// `kappa[a][b]` compares rater a with rater b; null where undefined.
    pub kappa: Vec<Vec<Option<f64>>>,
    /// Reason that `kappa[a][b]` is null; null where it has a value.
    pub reasons: Vec<Vec<Option<String>>>,
    /// Items both raters rated.
    pub n_items: Vec<Vec<u64>>,
}

pub(super) fn pairwise(matrix: &RatingMatrix, weighting: Weighting) -> Pairwise {
    let kappas = agreement::pairwise_cohen(matrix, weighting);
    let n_raters = matrix.n_raters();
    let n_items = (0..n_raters)
        .map(|a| {
            (0..n_raters)
                .map(|b| agreement::confusion_matrix(matrix, a, b).map_or(0, |confusion| confusion.n_items))
                .collect()
        })
        .collect();
    Pairwise {
        weighting,
        kappa: kappas
            .iter()
            .map(|row| row.iter().map(|kappa| kappa.as_ref().ok().copied()).collect())
            .collect(),
        reasons: kappas
            .iter()
            .map(|row| {
                row.iter()
                    .map(|kappa| kappa.as_ref().err().map(|undefined| undefined.reason.clone()))
                    .collect()
            })
            .collect(),
        n_items,
    }
}

/// One rater against the reference standard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaterVsReference {
    pub rater: String,
    /// Items with both a rating of this rater and a reference label.
    pub n_items: u64,
    pub kappa: Estimate,
    pub kappa_linear: Estimate,
    pub kappa_quadratic: Estimate,
    /// `confusion[a][b]`: items the rater rated a and the reference standard labels b.
    pub confusion: Vec<Vec<u64>>,
    /// Mean of (rater's category position − reference position): positive when the rater
    /// grades higher on the scale. Ordinal fields only; null otherwise or with no item compared.
    pub mean_signed_difference: Option<f64>,
}

pub(super) fn against_reference(
    matrix: &RatingMatrix,
    raters: &[String],
    reference: &[Option<usize>],
    scale: &FieldScale,
) -> Vec<RaterVsReference> {
    raters
        .iter()
        .enumerate()
        .filter_map(|(rater, pseudonym)| {
            // compare_with_reference fails only on a rater index or label outside the matrix,
            // and both come from this matrix.
            let comparison = agreement::compare_with_reference(matrix, rater, reference).ok()?;
            let estimate = |kappa: Result<f64, Undefined>| match comparison.confusion.n_items {
                0 => Estimate {
                    value: None,
                    reason: Some("no item has both a rating of this rater and a reference label".into()),
                },
                _ => Estimate::from(kappa),
            };
            Some(RaterVsReference {
                rater: pseudonym.clone(),
                n_items: comparison.confusion.n_items,
                kappa: estimate(comparison.kappa.clone()),
                kappa_linear: estimate(comparison.kappa_linear.clone()),
                kappa_quadratic: estimate(comparison.kappa_quadratic.clone()),
                confusion: comparison.confusion.counts,
                mean_signed_difference: comparison.mean_signed_difference.filter(|_| scale.is_ordinal()),
            })
        })
        .collect()
}

/// Two raters against each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaterConfusion {
    /// Rater of the rows.
    pub first: String,
    /// Rater of the columns.
    pub second: String,
    pub n_items: u64,
    pub confusion: Vec<Vec<u64>>,
}

pub(super) fn rater_confusion(matrix: &RatingMatrix, raters: &[String], first: usize, second: usize) -> RaterConfusion {
    let n_categories = matrix.n_categories();
    let confusion = agreement::confusion_matrix(matrix, first, second)
        .map(|confusion| (confusion.n_items, confusion.counts))
        .unwrap_or_else(|_| (0, vec![vec![0; n_categories]; n_categories]));
    RaterConfusion {
        first: raters[first].clone(),
        second: raters[second].clone(),
        n_items: confusion.0,
        confusion: confusion.1,
    }
}

/// Agreement within the groups of item metadata columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subgroups {
    /// Metric names of each row's `statistics`, in display order.
    pub metrics: Vec<String>,
    /// Metadata columns with 2 to [`MAX_SUBGROUPS`] distinct values among the graded items.
    pub columns: Vec<SubgroupColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubgroupColumn {
    pub column: String,
    /// Groups by value, in text order; items without the column are in no group.
    pub groups: Vec<SubgroupRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubgroupRow {
    pub value: String,
    pub n_items: usize,
    pub statistics: BTreeMap<String, Estimate>,
}

pub(super) fn subgroups(study: &StudyRatings, scale: &FieldScale, matrix: &FieldMatrix) -> Subgroups {
    let metrics = scale.headline_metrics();
    let column_names: BTreeSet<&String> = matrix
        .items
        .iter()
        .flat_map(|&item| study.items[item].metadata.keys())
        .collect();

    let mut columns = Vec::new();
    for column in column_names {
        // Matrix rows of each value of this column.
        let mut rows_by_value: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (row, &item) in matrix.items.iter().enumerate() {
            if let Some(value) = study.items[item].metadata.get(column) {
                rows_by_value.entry(value.as_str()).or_default().push(row);
            }
        }
        if !(2..=MAX_SUBGROUPS).contains(&rows_by_value.len()) {
            continue;
        }
        let groups = rows_by_value
            .into_iter()
            .map(|(value, rows)| {
                let report = agreement::compute_all(&matrix.matrix.select_items(&rows));
                SubgroupRow {
                    value: value.to_string(),
                    n_items: rows.len(),
                    statistics: pick(&report, &metrics),
                }
            })
            .collect();
        columns.push(SubgroupColumn {
            column: column.clone(),
            groups,
        });
    }
    Subgroups {
        metrics: metrics.iter().map(|metric| metric.name().to_string()).collect(),
        columns,
    }
}

/// Round 0 grades against the final labels, and agreement in round 0 against the last round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeforeAfter {
    /// Items with a final value for the field and at least one round-0 rating of it.
    pub n_items: usize,
    /// Round-0 ratings of those items ("not asked" is no rating).
    pub n_grades: usize,
    /// Of those, ratings equal to the item's final value.
    pub n_matching: usize,
    /// `n_matching / n_grades`; null when there is no rating.
    pub share_matching: Option<f64>,
    /// Mean over items of each item's share of matching round-0 ratings.
    pub mean_item_share: Option<f64>,
    /// The same counts by final value, in category order (categories no item ended in are left out).
    pub by_final_value: Vec<FinalValueRow>,
    pub items: Vec<ItemBeforeAfter>,
    pub round0: RoundAgreement,
    /// Each item's highest graded round (round 0 for items never regraded).
    pub last_round: RoundAgreement,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalValueRow {
    pub value: String,
    pub n_items: usize,
    pub n_grades: usize,
    pub n_matching: usize,
    pub share_matching: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemBeforeAfter {
    pub item_id: i64,
    pub item: String,
    pub final_value: String,
    pub n_grades: usize,
    pub n_matching: usize,
}

/// Agreement of one selection of grades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundAgreement {
    pub n_items: usize,
    /// Items whose grades come from a round after round 0.
    pub n_items_regraded: usize,
    pub statistics: BTreeMap<String, Estimate>,
}

fn share(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn round_agreement(study: &StudyRatings, scale: &FieldScale, selection: RoundSelection) -> RoundAgreement {
    let matrix = field_matrix(study, scale, selection);
    let regraded: BTreeSet<usize> = study
        .grades
        .iter()
        .filter(|grade| grade.round > 0)
        .map(|grade| grade.item)
        .collect();
    let n_items_regraded = match selection {
        RoundSelection::Round(0) => 0,
        _ => matrix.items.iter().filter(|item| regraded.contains(item)).count(),
    };
    let report = agreement::compute_all(&matrix.matrix);
    let mut metrics = vec![agreement::Metric::FleissKappa];
    metrics.extend(scale.headline_metrics());
    RoundAgreement {
        n_items: matrix.matrix.n_items(),
        n_items_regraded,
        statistics: pick(&report, &metrics),
    }
}

pub(super) fn before_after(study: &StudyRatings, scale: &FieldScale) -> BeforeAfter {
    let n_categories = scale.categories.len();
    // Round-0 ratings (category indices) of each item.
    let mut round0: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for grade in study.grades.iter().filter(|grade| grade.round == 0) {
        if let Some(category) = scale.category_of(&grade.answers) {
            round0.entry(grade.item).or_default().push(category);
        }
    }

    let mut items = Vec::new();
    let mut by_value = vec![(0usize, 0usize, 0usize); n_categories];
    let mut item_shares = Vec::new();
    for (&item, ratings) in &round0 {
        let record = &study.items[item];
        let Some(final_value) = record
            .resolution
            .as_ref()
            .and_then(|resolution| scale.category_of(resolution))
        else {
            continue;
        };
        let n_matching = ratings.iter().filter(|&&rating| rating == final_value).count();
        let counts = &mut by_value[final_value as usize];
        counts.0 += 1;
        counts.1 += ratings.len();
        counts.2 += n_matching;
        item_shares.push(n_matching as f64 / ratings.len() as f64);
        items.push(ItemBeforeAfter {
            item_id: record.id,
            item: record.name.clone(),
            final_value: scale.categories[final_value as usize].label.clone(),
            n_grades: ratings.len(),
            n_matching,
        });
    }

    let n_grades = items.iter().map(|item| item.n_grades).sum();
    let n_matching = items.iter().map(|item| item.n_matching).sum();
    let mean_item_share = (!item_shares.is_empty()).then(|| item_shares.iter().sum::<f64>() / item_shares.len() as f64);
    let by_final_value = by_value
        .into_iter()
        .enumerate()
        .filter(|(_, (n_items, _, _))| *n_items > 0)
        .map(|(category, (n_items, n_grades, n_matching))| FinalValueRow {
            value: scale.categories[category].label.clone(),
            n_items,
            n_grades,
            n_matching,
            share_matching: share(n_matching, n_grades),
        })
        .collect();
    BeforeAfter {
        n_items: items.len(),
        n_grades,
        n_matching,
        share_matching: share(n_matching, n_grades),
        mean_item_share,
        by_final_value,
        items,
        round0: round_agreement(study, scale, RoundSelection::Round(0)),
        last_round: round_agreement(study, scale, RoundSelection::Last),
    }
}
