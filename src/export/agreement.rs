//! `agreement.md`: inter-grader agreement per single-choice field, computed from each
//! item's current round-0 grades, the first grading made blind to other graders.
//!
//! For each field the report gives every coefficient of
//! [`crate::domain::agreement::compute_all`] with its analytic standard error where one is
//! defined, percentile bootstrap intervals for studies of up to [`MAX_BOOTSTRAP_ITEMS`]
//! graded items, the distribution of the ratings over the field's options, and Cohen's
//! kappa for every pair of graders (quadratic weights for ordinal fields, none otherwise).
//! `agreement.html` (see `agreement_html`) shows the same numbers with a kappa heatmap.
//!
//! The report holds no time, so the same database gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use super::context::StudyContext;
use super::ratings::RatingCollector;
use super::reference::ReferenceTally;
use super::ExportError;
use crate::domain::agreement::{self, AgreementReport, Metric, Undefined};
use crate::domain::agreement_report::{Statistics, CONFIDENCE_LEVEL};

/// Studies with more graded items than this get no bootstrap intervals: resampling costs
/// time in proportion to items × replicates, and the standard errors remain.
pub const MAX_BOOTSTRAP_ITEMS: usize = 20_000;

/// Bootstrap resamples of the items per interval.
pub const BOOTSTRAP_REPLICATES: usize = 1_000;

/// Seed of the bootstrap, fixed so that the report is reproducible.
pub const BOOTSTRAP_SEED: u64 = 1;

/// Agreement on one field.
pub struct FieldAgreement {
    pub name: String,
    pub label: String,
    pub kind: &'static str,
    pub weighting: &'static str,
    /// Option values with the labels graders saw and how many round-0 ratings chose each.
    pub categories: Vec<(String, String, u64)>,
    pub raters: Vec<String>,
    pub statistics: Statistics,
    pub standard_errors: AgreementReport,
    /// Cohen's kappa of every pair of raters, in the order of `raters`.
    pub pairwise: Vec<Vec<Result<f64, Undefined>>>,
}

/// The whole report.
pub struct AgreementSummary {
    pub study_name: String,
    pub slug: String,
    pub guideline: String,
    pub by_status: BTreeMap<String, u64>,
    pub by_method: BTreeMap<String, u64>,
    pub fields: Vec<FieldAgreement>,
}

/// Computes the agreement of every single-choice field, one field matrix at a time.
pub fn summarize(ctx: &StudyContext, tally: &ReferenceTally, ratings: &RatingCollector) -> AgreementSummary {
    let mut fields = Vec::with_capacity(ratings.scales().len());
    for index in 0..ratings.scales().len() {
        let field = ratings.field_ratings(index, ctx);
        let matrix = &field.matrix;
        let replicates = if matrix.n_items() <= MAX_BOOTSTRAP_ITEMS {
            BOOTSTRAP_REPLICATES
        } else {
            0
        };
        let statistics = Statistics::compute(matrix, replicates, BOOTSTRAP_SEED);
        let standard_errors = agreement::standard_errors(matrix);
        let pairwise = agreement::pairwise_cohen(matrix, field.scale.weighting());

        let mut counts = vec![0u64; matrix.n_categories()];
        for item in 0..matrix.n_items() {
            for category in matrix.row(item).iter().flatten() {
                counts[*category as usize] += 1;
            }
        }
        let categories = field
            .scale
            .categories
            .iter()
            .zip(&field.scale.option_labels)
            .zip(counts)
            .map(|((category, label), count)| (category.label.clone(), label.clone(), count))
            .collect();
        fields.push(FieldAgreement {
            name: field.scale.name.clone(),
            label: field.scale.label.clone(),
            kind: field.scale.kind.as_str(),
            weighting: if field.scale.is_ordinal() {
                "quadratic weights"
            } else {
                "unweighted"
            },
            categories,
            raters: field.raters,
            statistics,
            standard_errors,
            pairwise,
        });
    }
    AgreementSummary {
        study_name: ctx.project.name.clone(),
        slug: ctx.project.slug.clone(),
        guideline: ctx.guideline_label(),
        by_status: tally.by_status.clone(),
        by_method: tally.by_method.clone(),
        fields,
    }
}

/// Computes the report and renders `agreement.md` and `agreement.html` into memory (a few
/// hundred kilobytes at most: the size grows with fields and raters, not with items).
pub fn render(
    ctx: &StudyContext,
    tally: &ReferenceTally,
    ratings: RatingCollector,
) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    let summary = summarize(ctx, tally, &ratings);
    drop(ratings);
    let mut markdown = Vec::new();
    write_markdown(&summary, &mut markdown)?;
    let mut html = Vec::new();
    super::agreement_html::write_html(&summary, &mut html)?;
    Ok(vec![("agreement.md", markdown), ("agreement.html", html)])
}

/// One metric's row: name, value, standard error and interval, as text ("" where none).
pub struct MetricRow {
    pub name: &'static str,
    pub value: String,
    pub standard_error: String,
    pub interval: String,
}

/// The metric rows of a field, in [`Metric::ALL`] order. An undefined value shows its reason.
pub fn metric_rows(field: &FieldAgreement) -> Vec<MetricRow> {
    Metric::ALL
        .iter()
        .map(|metric| {
            let name = metric.name();
            let value = match field.statistics.metrics.get(name).copied().flatten() {
                Some(value) => format!("{value:.3}"),
                None => match field.statistics.undefined.get(name) {
                    Some(reason) => format!("undefined: {reason}"),
                    None => "not computed".to_string(),
                },
            };
            let standard_error = field
                .standard_errors
                .values
                .get(name)
                .map(|se| format!("{se:.3}"))
                .unwrap_or_default();
            let interval = field
                .statistics
                .ci
                .as_ref()
                .and_then(|ci| ci.get(name))
                .map(|[lower, upper]| format!("{lower:.3} to {upper:.3}"))
                .unwrap_or_default();
            MetricRow {
                name,
                value,
                standard_error,
                interval,
            }
        })
        .collect()
}

/// A kappa cell: two decimals, or "n/a" where undefined (a rater with themselves, or no
/// item in common).
pub fn kappa_cell(kappa: &Result<f64, Undefined>) -> String {
    match kappa {
        Ok(value) => format!("{value:.2}"),
        Err(_) => "n/a".to_string(),
    }
}

/// The sentence that says which grades the statistics read and how intervals were made.
pub fn method_note(field: &FieldAgreement) -> String {
    let intervals = if field.statistics.ci.is_some() {
        format!(
            "Intervals are {:.0}% percentile bootstrap intervals from {BOOTSTRAP_REPLICATES} resamples of the items (seed {BOOTSTRAP_SEED}).",
            CONFIDENCE_LEVEL * 100.0
        )
    } else {
        format!("No bootstrap intervals: the field has more than {MAX_BOOTSTRAP_ITEMS} graded items, so only standard errors are given.")
    };
    format!(
        "{} items with at least one round-0 grade, {} raters. {intervals}",
        field.statistics.n_items, field.statistics.n_raters
    )
}

/// Escapes the characters that end or format a Markdown table cell.
fn md(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Writes `agreement.md`.
pub fn write_markdown(summary: &AgreementSummary, out: &mut dyn Write) -> Result<(), ExportError> {
    let mut text = String::new();
    let _ = writeln!(text, "# Agreement report: {}\n", md(&summary.study_name));
    let _ = writeln!(
        text,
        "Study `{}`, guideline {}. Every statistic reads each item's current round-0 grades: the first grading, \
         made blind to the other graders and before any adjudication round.\n",
        summary.slug, summary.guideline
    );

    text.push_str("## Items\n\n| Status | Items |\n| --- | ---: |\n");
    for (status, count) in &summary.by_status {
        let _ = writeln!(text, "| {} | {count} |", md(status));
    }
    text.push_str("\n| Resolution method | Resolved items |\n| --- | ---: |\n");
    for (method, count) in &summary.by_method {
        let _ = writeln!(text, "| {} | {count} |", md(method));
    }
    if summary.fields.is_empty() {
        text.push_str("\nThe guideline has no single-choice field, so no agreement statistic applies.\n");
    }

    for field in &summary.fields {
        let _ = writeln!(text, "\n## {} (`{}`, {})\n", md(&field.label), field.name, field.kind);
        let _ = writeln!(text, "{}\n", method_note(field));
        text.push_str("| Option | Label | Ratings |\n| --- | --- | ---: |\n");
        for (value, label, count) in &field.categories {
            let _ = writeln!(text, "| {} | {} | {count} |", md(value), md(label));
        }
        text.push_str("\n| Metric | Value | Standard error | 95% interval |\n| --- | --- | --- | --- |\n");
        for row in metric_rows(field) {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                row.name,
                md(&row.value),
                row.standard_error,
                row.interval
            );
        }
        if field.raters.len() >= 2 {
            let _ = writeln!(text, "\nCohen's kappa between graders ({}):\n", field.weighting);
            let names: Vec<String> = field.raters.iter().map(|name| md(name)).collect();
            let _ = writeln!(text, "| | {} |", names.join(" | "));
            let _ = writeln!(text, "| --- |{}", " ---: |".repeat(names.len()));
            for (name, row) in names.iter().zip(&field.pairwise) {
                let cells: Vec<String> = row.iter().map(kappa_cell).collect();
                let _ = writeln!(text, "| {name} | {} |", cells.join(" | "));
            }
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}
