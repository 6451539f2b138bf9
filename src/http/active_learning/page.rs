//! The lead's active-learning page: start a run, follow its progress, compare runs, read a
//! run's evaluation (confusion matrix and precision-recall curves drawn by
//! [`crate::charts`], sensitivity and specificity at a chosen threshold), its ranked queue,
//! and accept its pseudolabel proposals. The page reads everything through the same store
//! functions as the API; `frontend/static/active-learning.js` drives the form, the live
//! progress, the threshold slider and the accept buttons.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::lead_context;
use crate::charts::{self, curves::PrSeries};
use crate::domain::guideline::{FieldKind, Guideline};
use crate::domain::model_run::learnable_fields;
use crate::http::auth::CurrentUser;
use crate::http::error::AppError;
use crate::http::AppState;
use crate::ml::{Evaluation, Strategy};
use crate::store::active_learning::runs::{self, ModelRunRow, QueueEntry, RunStatus};
use crate::store::guidelines;

/// Runs listed on the page.
const LISTED_RUNS: i64 = 20;
/// Queue entries and proposals shown for the selected run.
const SHOWN_ENTRIES: i64 = 50;
/// Lowest class index counted as referable when the field has more than two classes: DR
/// severity 2 (moderate NPDR) or worse on the International Clinical DR scale, the usual
/// referral threshold in screening. With two classes the only cut-off is class 1.
const REFERABLE_CLASS: usize = 2;

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |value| format!("{value:.3}"))
}

/// A field a run can learn, for the form.
struct FieldChoice {
    name: String,
    label: String,
}

/// One row of the runs table.
struct RunRow {
    id: i64,
    field: String,
    strategy: String,
    model_kind: String,
    status: String,
    progress_percent: String,
    accuracy: String,
    kappa: String,
    error: String,
}

/// One row of the queue or proposal table.
struct EntryRow {
    rank: usize,
    item_id: i64,
    name: String,
    status: String,
    priority: String,
    top_class: String,
    entropy: String,
    margin: String,
    bald: String,
    proposal: String,
    confidence: String,
    accepted: bool,
    /// The proposal can still be accepted: not accepted and the item waits for grades.
    open: bool,
}

/// The run whose details the page shows.
struct SelectedRun {
    id: i64,
    field_label: String,
    model_kind: String,
    strategy: String,
    accuracy: String,
    balanced_accuracy: String,
    kappa: String,
    ece: String,
    train_count: usize,
    heldout_count: usize,
    scored: i64,
    proposed: i64,
    confusion_svg: String,
    pr_svg: String,
    /// The evaluation's cut-off curves as JSON for the threshold slider, with `<` escaped so
    /// the text cannot end its script element.
    cutoffs_json: String,
    default_cutoff: usize,
    queue: Vec<EntryRow>,
    proposals: Vec<EntryRow>,
}

#[derive(Template)]
#[template(path = "active_learning.html")]
struct ActiveLearningPage {
    user: CurrentUser,
    slug: String,
    name: String,
    fields: Vec<FieldChoice>,
    strategies: Vec<&'static str>,
    threshold: f64,
    preannotation: bool,
    runs: Vec<RunRow>,
    running_run_id: Option<i64>,
    selected: Option<SelectedRun>,
}

fn run_row(run: &ModelRunRow) -> RunRow {
    let metrics: serde_json::Value = serde_json::from_str(&run.metrics).unwrap_or_default();
    RunRow {
        id: run.id,
        field: run.field.clone(),
        strategy: run.strategy.clone(),
        model_kind: run.model_kind.clone(),
        status: run.status.clone(),
        progress_percent: format!("{:.0}%", run.progress * 100.0),
        accuracy: number(metrics["accuracy"].as_f64()),
        kappa: number(metrics["quadratic_kappa"].as_f64()),
        error: run.error.clone().unwrap_or_default(),
    }
}

fn entry_row(rank: usize, entry: &QueueEntry, classes: &[String]) -> EntryRow {
    let probabilities: Vec<f64> = serde_json::from_str(&entry.probabilities).unwrap_or_default();
    let scores: serde_json::Value = serde_json::from_str(&entry.scores).unwrap_or_default();
    let top = probabilities.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1));
    let top_class = match top {
        Some((index, probability)) => {
            format!("{} ({probability:.2})", classes.get(index).map_or("?", String::as_str))
        }
        None => "–".to_string(),
    };
    let waiting = entry.status == "pending" || entry.status == "grading";
    EntryRow {
        rank,
        item_id: entry.item_id,
        name: entry.name.clone(),
        status: entry.status.clone(),
        priority: format!("{:.0}", entry.priority),
        top_class,
        entropy: number(scores["entropy"].as_f64()),
        margin: number(scores["margin"].as_f64()),
        bald: number(scores["bald"].as_f64()),
        proposal: entry.proposal.clone().unwrap_or_default(),
        confidence: number(entry.confidence),
        accepted: entry.accepted_resolution_id.is_some(),
        open: entry.proposal.is_some() && entry.accepted_resolution_id.is_none() && waiting,
    }
}

/// Builds the figures and tables of one succeeded run.
fn selected_run(conn: &mut crate::store::Conn, guideline: &Guideline, run: &ModelRunRow) -> Result<SelectedRun, AppError> {
    let evaluation: Evaluation = serde_json::from_str(&run.metrics)
        .map_err(|e| AppError::internal(format!("metrics of model run {}: {e}", run.id)))?;
    let field = guideline.field(&run.field);
    let label_of = |value: &str| -> String {
        field
            .and_then(|field| field.option(value))
            .map_or_else(|| value.to_string(), |option| format!("{value}: {}", option.label))
    };
    let class_labels: Vec<String> = evaluation.classes.iter().map(|value| label_of(value)).collect();

    let confusion_svg = charts::confusion_chart("Reference standard", "Model", &evaluation.classes, &evaluation.confusion)
        .map_err(AppError::internal)?;
    let series: Vec<PrSeries<'_>> = evaluation
        .pr_curves
        .iter()
        .map(|curve| PrSeries {
            label: class_labels.get(curve.class).map_or("?", String::as_str),
            points: curve.points.iter().map(|point| (point.recall, point.precision)).collect(),
        })
        .collect();
    let pr_svg = charts::curves::pr_curves_chart(&series).map_err(AppError::internal)?;

    let field_label = field.map_or(run.field.as_str(), |field| field.label.as_str());
    let ordinal = field.is_some_and(|field| field.kind == FieldKind::Ordinal);
    let cutoffs: Vec<serde_json::Value> = evaluation
        .cutoffs
        .iter()
        .map(|curve| {
            let positive = evaluation.classes.get(curve.cutoff..).unwrap_or_default();
            // A cut-off counts the classes from `cutoff` on as positive. Only an ordinal
            // scale reads that as "or higher"; other fields list the classes.
            let label = match positive.first() {
                Some(first) if ordinal => format!("{field_label} {first} or higher"),
                _ => format!("{field_label}: {}", positive.join(" or ")),
            };
            serde_json::json!({
                "cutoff": curve.cutoff,
                "label": label,
                "positives": curve.positives,
                "negatives": curve.negatives,
                "auc": curve.auc,
                "points": curve.points,
            })
        })
        .collect();
    let cutoffs_json = serde_json::Value::from(cutoffs).to_string().replace('<', "\\u003c");
    let default_cutoff = if evaluation.classes.len() > 2 { REFERABLE_CLASS } else { 1 };

    let (scored, proposed) = runs::prediction_counts(conn, run.id)?;
    let queue = runs::ranked_queue(conn, run.id, SHOWN_ENTRIES)?
        .iter()
        .enumerate()
        .map(|(index, entry)| entry_row(index + 1, entry, &evaluation.classes))
        .collect();
    let proposals = runs::proposals(conn, run.id, SHOWN_ENTRIES)?
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let mut row = entry_row(index + 1, entry, &evaluation.classes);
            row.proposal = label_of(&row.proposal);
            row
        })
        .collect();
    Ok(SelectedRun {
        id: run.id,
        field_label: field.map_or_else(|| run.field.clone(), |field| field.label.clone()),
        model_kind: run.model_kind.clone(),
        strategy: run.strategy.clone(),
        accuracy: number(Some(evaluation.accuracy)),
        balanced_accuracy: number(Some(evaluation.balanced_accuracy)),
        kappa: number(evaluation.quadratic_kappa),
        ece: number(Some(evaluation.ece)),
        train_count: evaluation.train_count,
        heldout_count: evaluation.heldout_count,
        scored,
        proposed,
        confusion_svg,
        pr_svg,
        cutoffs_json,
        default_cutoff,
        queue,
        proposals,
    })
}

/// `GET /studies/{slug}/active-learning[?run=ID]`: the lead's page; without `run` it shows
/// the newest succeeded run.
pub async fn active_learning_page(
    state: web::Data<AppState>,
    user: Option<CurrentUser>,
    slug: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish());
    };
    let requested_run = match query.get("run") {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| AppError::Unprocessable {
            field: "run".into(),
            message: format!("run {text:?} is not a run id; use the number from the runs table"),
            allowed: vec![],
        })?),
    };
    let db = state.db.clone();
    let slug = slug.into_inner();
    let page = web::block(move || -> Result<ActiveLearningPage, AppError> {
        let mut conn = db.conn()?;
        let project = lead_context(&mut conn, &user, &slug)?;
        let (_, guideline) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
        let fields = learnable_fields(&guideline)
            .into_iter()
            .map(|name| {
                let label = guideline.field(&name).map_or_else(|| name.clone(), |field| field.label.clone());
                FieldChoice { name, label }
            })
            .collect();
        let rows = runs::list_runs(&mut conn, project.id, LISTED_RUNS)?;
        let running_run_id = rows.iter().find(|run| run.status == RunStatus::Running.as_str()).map(|run| run.id);
        let shown = match requested_run {
            Some(run_id) => Some(
                runs::find_run(&mut conn, project.id, run_id)?
                    .ok_or_else(|| AppError::NotFound(format!("model run {run_id} is not in study {slug:?}")))?,
            ),
            None => runs::latest_succeeded_run(&mut conn, project.id)?,
        };
        let selected = match shown {
            Some(run) if run.status == RunStatus::Succeeded.as_str() => Some(selected_run(&mut conn, &guideline, &run)?),
            _ => None,
        };
        Ok(ActiveLearningPage {
            user,
            slug: project.slug,
            name: project.name,
            fields,
            strategies: Strategy::ALL.iter().map(|strategy| strategy.name()).collect(),
            threshold: project.pseudolabel_threshold,
            preannotation: project.preannotation,
            runs: rows.iter().map(run_row).collect(),
            running_run_id,
            selected,
        })
    })
    .await??;
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}
