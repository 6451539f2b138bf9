//! `agreement.html`: the agreement report of `agreement.md` as one self-contained page, with
//! the pairwise kappa of each field drawn as an SVG heatmap by [`crate::charts`].

use std::fmt::Write as _;
use std::io::Write;

use super::agreement::{kappa_cell, method_note, metric_rows, AgreementSummary};
use super::ExportError;

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
table{border-collapse:collapse;margin:0.5rem 0 1rem}th,td{border:1px solid #d5d9df;padding:0.25rem 0.5rem;text-align:left}\
td.num{text-align:right}figure{margin:1rem 0}";

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Writes `agreement.html`.
///
/// Fails when a heatmap cannot be drawn.
pub fn write_html(summary: &AgreementSummary, out: &mut dyn Write) -> Result<(), ExportError> {
    let title = format!("Agreement report: {}", summary.study_name);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(html, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        html,
        "<p>Study <code>{}</code>, guideline {}. Every statistic reads each item's current round-0 grades: the first \
         grading, made blind to the other graders and before any adjudication round.</p>",
        escape(&summary.slug),
        escape(&summary.guideline)
    );

    html.push_str("<h2>Items</h2>\n<table><thead><tr><th>Status</th><th>Items</th></tr></thead><tbody>\n");
    for (status, count) in &summary.by_status {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            escape(status)
        );
    }
    html.push_str(
        "</tbody></table>\n<table><thead><tr><th>Resolution method</th><th>Resolved items</th></tr></thead><tbody>\n",
    );
    for (method, count) in &summary.by_method {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            escape(method)
        );
    }
    html.push_str("</tbody></table>\n");
    if summary.fields.is_empty() {
        html.push_str("<p>The guideline has no single-choice field, so no agreement statistic applies.</p>\n");
    }

    for field in &summary.fields {
        let _ = writeln!(
            html,
            "<section id=\"field-{}\">\n<h2>{} (<code>{}</code>, {})</h2>\n<p>{}</p>",
            escape(&field.name),
            escape(&field.label),
            escape(&field.name),
            field.kind,
            escape(&method_note(field))
        );
        html.push_str("<table><thead><tr><th>Option</th><th>Label</th><th>Ratings</th></tr></thead><tbody>\n");
        for (value, label, count) in &field.categories {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{count}</td></tr>",
                escape(value),
                escape(label)
            );
        }
        html.push_str("</tbody></table>\n");
        html.push_str(
            "<table><thead><tr><th>Metric</th><th>Value</th><th>Standard error</th><th>95% interval</th></tr></thead><tbody>\n",
        );
        for row in metric_rows(field) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                row.name,
                escape(&row.value),
                row.standard_error,
                row.interval
            );
        }
        html.push_str("</tbody></table>\n");

        if field.raters.len() >= 2 {
            let _ = writeln!(html, "<h3>Cohen's kappa between graders ({})</h3>", field.weighting);
            let kappa: Vec<Vec<Option<f64>>> = field
                .pairwise
                .iter()
                .map(|row| row.iter().map(|kappa| kappa.as_ref().ok().copied()).collect())
                .collect();
            let svg = crate::charts::kappa_heatmap(&field.raters, &kappa)?;
            let _ = writeln!(html, "<figure>{svg}</figure>");
            html.push_str("<table><thead><tr><th></th>");
            for rater in &field.raters {
                let _ = write!(html, "<th>{}</th>", escape(rater));
            }
            html.push_str("</tr></thead><tbody>\n");
            for (rater, row) in field.raters.iter().zip(&field.pairwise) {
                let _ = write!(html, "<tr><th>{}</th>", escape(rater));
                for kappa in row {
                    let _ = write!(html, "<td class=\"num\">{}</td>", kappa_cell(kappa));
                }
                html.push_str("</tr>\n");
            }
            html.push_str("</tbody></table>\n");
        }
        html.push_str("</section>\n");
    }
    html.push_str("</body>\n</html>\n");
    out.write_all(html.as_bytes())?;
    Ok(())
}
