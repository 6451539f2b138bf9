use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::domain::answers::validate_answers;
use crate::domain::guideline::parse_guideline;

fn guideline() -> Guideline {
    parse_guideline(
        r#"
key = "t"
version = "1"
title = "T"
[[fields]]
name = "gradability"
kind = "nominal"
options = [{ value = "gradable", label = "Gradable" }, { value = "ungradable", label = "Ungradable" }]
[[fields]]
name = "dr"
kind = "ordinal"
condition = { field = "gradability", in = ["gradable"] }
options = [{ value = "0", label = "None" }, { value = "2", label = "Moderate" }, { value = "1", label = "Mild" }]
[[fields]]
name = "dme"
kind = "ordinal"
condition = { field = "gradability", in = ["gradable"] }
options = [{ value = "absent", label = "Absent" }, { value = "present", label = "Present" }]
[[fields]]
name = "notes"
kind = "text"
required = false
"#,
    )
    .expect("valid test guideline")
}

/// Answers with DR grade `dr`, or ungradable for `None`.
fn answers(dr: Option<&str>) -> Answers {
    let value = match dr {
        Some(dr) => json!({ "gradability": "gradable", "dr": dr, "dme": "absent" }),
        None => json!({ "gradability": "ungradable" }),
    };
    validate_answers(&guideline(), &value).expect("valid test answers")
}

fn scale(name: &str) -> FieldScale {
    FieldScale::new(guideline().field(name).expect("field")).expect("single-choice field")
}

/// Builds a study of `grades[item][rater]` in round 0, with `eye` metadata alternating between items.
fn study(grades: &[Vec<Option<&str>>], resolutions: &[Option<&str>]) -> StudyRatings {
    let items = grades
        .iter()
        .enumerate()
        .map(|(item, _)| ItemRecord {
            id: 100 + item as i64,
            name: format!("image-{item}.jpg"),
            metadata: BTreeMap::from([
                (
                    "eye".to_string(),
                    if item % 2 == 0 { "left" } else { "right" }.to_string(),
                ),
                ("patient".to_string(), format!("p{item}")),
            ]),
            resolution: resolutions.get(item).copied().flatten().map(|dr| answers(Some(dr))),
        })
        .collect();
    let n_raters = grades.first().map_or(0, Vec::len);
    let mut records = Vec::new();
    for (item, row) in grades.iter().enumerate() {
        for (rater, dr) in row.iter().enumerate() {
            records.push(GradeRecord {
                item,
                rater,
                round: 0,
                answers: answers(*dr),
            });
        }
    }
    StudyRatings {
        items,
        raters: (0..n_raters).map(crate::domain::roles::pseudonym).collect(),
        grades: records,
    }
}

const OPTIONS: ReportOptions = ReportOptions {
    round: 0,
    replicates: 0,
    seed: 1,
};

#[test]
fn scale_keeps_declared_order_and_numbers() {
    let dr = scale("dr");
    let labels: Vec<&str> = dr.categories.iter().map(|category| category.label.as_str()).collect();
    assert_eq!(labels, ["0", "2", "1"]);
    let values: Vec<f64> = dr.categories.iter().map(|category| category.value).collect();
    assert_eq!(values, [0.0, 2.0, 1.0]);

    let dme = scale("dme");
    let values: Vec<f64> = dme.categories.iter().map(|category| category.value).collect();
    assert_eq!(values, [0.0, 1.0], "text options take their positions");
    assert!(FieldScale::new(guideline().field("notes").expect("field")).is_none());
}

#[test]
fn not_asked_is_a_missing_rating() {
    let study = study(&[vec![Some("0"), None], vec![Some("1"), Some("1")]], &[]);
    let matrix = field_matrix(&study, &scale("dr"), RoundSelection::Round(0));
    assert_eq!(matrix.matrix.n_items(), 2);
    assert_eq!(matrix.matrix.row(0), &[Some(0), None]);
    assert_eq!(matrix.matrix.row(1), &[Some(2), Some(2)]);

    let gradability = field_matrix(&study, &scale("gradability"), RoundSelection::Round(0));
    assert_eq!(gradability.matrix.row(0), &[Some(0), Some(1)]);
}

#[test]
fn last_round_takes_each_items_highest_round() {
    let mut study = study(&[vec![Some("0"), Some("1")], vec![Some("2"), Some("2")]], &[]);
    study.grades.push(GradeRecord {
        item: 0,
        rater: 0,
        round: 1,
        answers: answers(Some("1")),
    });
    study.grades.push(GradeRecord {
        item: 0,
        rater: 1,
        round: 1,
        answers: answers(Some("1")),
    });
    let last = field_matrix(&study, &scale("dr"), RoundSelection::Last);
    assert_eq!(last.matrix.row(0), &[Some(2), Some(2)]);
    assert_eq!(last.matrix.row(1), &[Some(1), Some(1)]);
    let round1 = field_matrix(&study, &scale("dr"), RoundSelection::Round(1));
    assert_eq!(round1.items, vec![0]);
}

#[test]
fn report_statistics_match_compute_all() {
    let grades = [
        vec![Some("0"), Some("0"), Some("1")],
        vec![Some("1"), Some("2"), Some("1")],
        vec![Some("2"), Some("2"), Some("2")],
        vec![Some("0"), None, Some("0")],
    ];
    let study = study(&grades, &[]);
    let report = field_report(&study, &scale("dr"), &OPTIONS);
    let direct = agreement::compute_all(&field_matrix(&study, &scale("dr"), RoundSelection::Round(0)).matrix);
    for (name, value) in &direct.values {
        assert_eq!(report.statistics.metrics[name], Some(*value), "{name}");
    }
    for name in direct.undefined.keys() {
        assert_eq!(report.statistics.metrics[name], None, "{name}");
    }
    assert_eq!(report.statistics.undefined, direct.undefined);
    assert_eq!(report.statistics.ci, None, "no bootstrap was asked for");
    assert_eq!(report.raters, ["Grader A", "Grader B", "Grader C"]);
    assert!(report.against_reference.is_none());
    let first_pair = report
        .first_pair
        .expect("no reference, so the first two raters are compared");
    assert_eq!(first_pair.n_items, 3);
}

#[test]
fn bootstrap_adds_intervals() {
    let grades: Vec<Vec<Option<&str>>> = (0..30)
        .map(|i| {
            vec![
                Some(["0", "1", "2"][i % 3]),
                Some(["0", "1", "2"][(i / 2) % 3]),
                Some("0"),
            ]
        })
        .collect();
    let study = study(&grades, &[]);
    let options = ReportOptions {
        replicates: 200,
        ..OPTIONS
    };
    let report = field_report(&study, &scale("dr"), &options);
    let ci = report.statistics.ci.expect("intervals");
    let [lower, upper] = ci["fleiss_kappa"];
    let estimate = report.statistics.metrics["fleiss_kappa"].expect("defined");
    assert!(lower <= estimate, "{lower} {estimate}");
    assert!(estimate <= upper, "{estimate} {upper}");
}

#[test]
fn reference_comparison_uses_resolutions() {
    let grades = [
        vec![Some("0"), Some("1")],
        vec![Some("1"), Some("1")],
        vec![Some("2"), Some("1")],
    ];
    let study = study(&grades, &[Some("0"), Some("1"), None]);
    let report = field_report(&study, &scale("dr"), &OPTIONS);
    let reference = report.against_reference.expect("resolutions exist");
    assert_eq!(reference.len(), 2);
    assert_eq!(reference[0].n_items, 2);
    assert_eq!(reference[0].kappa.value, Some(1.0));
    // Grader B rated "1" (position 2) where the reference is "0" (position 0): +2 on one of two items.
    assert_eq!(reference[1].mean_signed_difference, Some(1.0));
    assert_eq!(reference[1].confusion[2], vec![1, 0, 1]);
    assert!(report.first_pair.is_none());

    let gradability = field_report(&study, &scale("gradability"), &OPTIONS);
    let reference = gradability.against_reference.expect("resolutions exist");
    assert_eq!(
        reference[0].mean_signed_difference, None,
        "no tendency on a nominal field"
    );
}

#[test]
fn one_category_gives_reasons_not_nan() {
    let grades = vec![vec![Some("2"); 3]; 4];
    let study = study(&grades, &[Some("2"); 4]);
    let report = field_report(&study, &scale("dr"), &OPTIONS);
    assert_eq!(report.statistics.metrics["percent_agreement"], Some(1.0));
    assert_eq!(report.statistics.metrics["fleiss_kappa"], None);
    assert!(report.statistics.undefined["fleiss_kappa"].contains("one category"));
    assert_eq!(report.pairwise.kappa[0][1], None);
    assert!(report.pairwise.reasons[0][1]
        .as_deref()
        .is_some_and(|reason| reason.contains("one category")));
    let reference = report.against_reference.as_ref().expect("resolutions exist");
    assert_eq!(reference[0].kappa.value, None);
    assert!(reference[0].kappa.reason.is_some());
    let text = serde_json::to_string(&report).expect("serialisable");
    assert!(!text.contains("NaN"), "{text}");
    assert!(!text.contains("inf"), "{text}");
}

#[test]
fn subgroups_need_two_to_twenty_values() {
    let grades: Vec<Vec<Option<&str>>> = (0..6).map(|i| vec![Some(["0", "1"][i % 2]), Some("0")]).collect();
    let mut study = study(&grades, &[]);
    for (index, item) in study.items.iter_mut().enumerate() {
        item.metadata.insert("site".into(), "one".into());
        if index == 0 {
            item.metadata.remove("eye");
        }
    }
    let report = field_report(&study, &scale("dr"), &OPTIONS);
    let columns: Vec<&str> = report
        .subgroups
        .columns
        .iter()
        .map(|column| column.column.as_str())
        .collect();
    assert_eq!(columns, ["eye", "patient"], "one value (site) is no breakdown");
    let eye = &report.subgroups.columns[0];
    assert_eq!(
        eye.groups.iter().map(|group| group.value.as_str()).collect::<Vec<_>>(),
        ["left", "right"]
    );
    assert_eq!(eye.groups[0].n_items, 2, "the item without the column is in no group");
    assert_eq!(eye.groups[1].n_items, 3);
    assert_eq!(
        report.subgroups.metrics,
        [
            "percent_agreement",
            "fleiss_kappa_generalized",
            "krippendorff_alpha_ordinal",
            "gwet_ac2_quadratic"
        ]
    );

    let many: Vec<Vec<Option<&str>>> = (0..21).map(|_| vec![Some("0"), Some("0")]).collect();
    let report = field_report(&self::study(&many, &[]), &scale("dr"), &OPTIONS);
    assert!(
        report.subgroups.columns.iter().all(|column| column.column != "patient"),
        "21 values is too many"
    );
}

#[test]
fn before_after_counts_matching_round0_ratings() {
    let grades = [
        vec![Some("0"), Some("1"), Some("1")],
        vec![Some("2"), Some("2"), None],
        vec![Some("1"), Some("1"), Some("1")],
    ];
    let mut study = study(&grades, &[Some("1"), Some("2"), None]);
    study.grades.push(GradeRecord {
        item: 0,
        rater: 0,
        round: 1,
        answers: answers(Some("1")),
    });
    let report = field_report(&study, &scale("dr"), &OPTIONS);
    let before_after = &report.before_after;
    assert_eq!(before_after.n_items, 2);
    assert_eq!(before_after.n_grades, 5);
    assert_eq!(before_after.n_matching, 4);
    assert_eq!(before_after.mean_item_share, Some((2.0 / 3.0 + 1.0) / 2.0));
    let values: Vec<&str> = before_after
        .by_final_value
        .iter()
        .map(|row| row.value.as_str())
        .collect();
    assert_eq!(values, ["2", "1"], "rows follow the declared category order");
    assert_eq!(before_after.items[0].item_id, 100);
    assert_eq!(before_after.round0.n_items, 3);
    assert_eq!(before_after.round0.n_items_regraded, 0);
    assert_eq!(before_after.last_round.n_items_regraded, 1);
}

#[test]
fn scorecard_compares_own_grades() {
    let grades = vec![
        OwnGrade {
            answers: answers(Some("0")),
            reference: answers(Some("0")),
        },
        OwnGrade {
            answers: answers(Some("2")),
            reference: answers(Some("0")),
        },
        OwnGrade {
            answers: answers(None),
            reference: answers(Some("1")),
        },
    ];
    let card = scorecard(&guideline(), &grades);
    assert_eq!(card.n_grades, 3);
    let fields: Vec<&str> = card.fields.iter().map(|field| field.field.as_str()).collect();
    assert_eq!(fields, ["gradability", "dr", "dme"]);
    let dr = &card.fields[1];
    assert_eq!(dr.n_items, 2);
    assert_eq!(dr.confusion[1][0], 1);
    assert_eq!(dr.mean_signed_difference, Some(0.5));
    assert_eq!(card.fields[0].n_items, 3);

    let empty = scorecard(&guideline(), &[]);
    assert_eq!(empty.fields[1].kappa.value, None);
    assert!(empty.fields[1].kappa.reason.is_some());
}
