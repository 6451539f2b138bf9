//! `pseudolabels.csv`: the proposals of model runs, kept apart from the reference standard.
//!
//! Written only when the study has predictions with a proposal. Columns: `image`, `run_id`,
//! `field`, `model_kind`, `strategy`, `proposal`, `confidence` (empty when the model gave
//! none) and `accepted` (`TRUE` when a resolution was made from the proposal), one row per
//! prediction in prediction id order.

use std::io::Write;

use super::format::{bool_cell, csv_writer};
use super::rows::{self, ROW_PAGE};
use super::ExportError;

/// True when the study has at least one prediction with a proposal.
pub fn has_proposals(conn: &mut crate::store::DbConnection, project_id: i64) -> Result<bool, ExportError> {
    Ok(!rows::prediction_page(conn, project_id, 0, 1)?.is_empty())
}

/// Writes `pseudolabels.csv` and returns the number of rows.
pub fn write_pseudolabels(
    conn: &mut crate::store::DbConnection,
    project_id: i64,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut writer = csv_writer(out);
    writer.write_record([
        "image",
        "run_id",
        "field",
        "model_kind",
        "strategy",
        "proposal",
        "confidence",
        "accepted",
    ])?;
    let mut written = 0u64;
    let mut after = 0;
    loop {
        let page = rows::prediction_page(conn, project_id, after, ROW_PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for prediction in &page {
            let confidence = prediction.confidence.map(|value| value.to_string()).unwrap_or_default();
            writer.write_record([
                prediction.image.as_str(),
                &prediction.run_id.to_string(),
                &prediction.field,
                &prediction.model_kind,
                &prediction.strategy,
                &prediction.proposal,
                &confidence,
                bool_cell(prediction.accepted_resolution_id.is_some()),
            ])?;
            written += 1;
        }
    }
    writer.flush()?;
    Ok(written)
}
