//! Model runs as jobs: check a request, start the run, train and score, store the outcome.
//!
//! [`prepare`] does everything that can reject a request (the field, the strategy, the
//! settings, enough labels, no other run of the study running) and inserts the run row, so
//! a rejected request stores nothing. [`execute`] then trains and scores with
//! [`crate::ml::run`], writes the progress to the run row (at most once a second, or when
//! the stage changes) and publishes it on the study's event stream as
//! `{"type": "model_run", run_id, status, stage, progress}`. When the model succeeds its
//! predictions and the new item priorities are stored in one transaction; when anything
//! fails, the run is marked failed with the error and the priorities stay as they were.
//!
//! The HTTP API runs [`execute`] on a thread of its own ([`spawn`]); `quorum al run` runs it
//! in the foreground with a progress bar. A thread beside the model writes a heartbeat every
//! [`runs::HEARTBEAT_INTERVAL_MS`], so a run whose process died is recognised as abandoned.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::domain::model_run::{check_epochs, check_labels, check_resolution, check_threshold, class_values, RunInputError};
use crate::events::{EventHub, Room};
use crate::imaging::storage::paths_for;
use crate::ml::{self, LabeledImage, RunConfig, Strategy, UnlabeledImage};
use crate::store::active_learning::runs::{self, FinishedRun, ModelRunRow, NewPrediction, NewRun, StartError};
use crate::store::active_learning::{training_set, unresolved_items};
use crate::store::models::ProjectRow;
use crate::store::{guidelines, Database, DbConnection, StoreError};

/// Shortest time between two progress writes to the run row, unless the stage changes.
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// A lead's request to start a run, as the API's JSON body; `None` takes the default.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub field: String,
    pub strategy: String,
    /// Lowest confidence for a pseudolabel proposal; the study's threshold when `None`.
    pub confidence_threshold: Option<f64>,
    pub epochs: Option<u32>,
    /// Side of the square model input, in pixels.
    pub resolution: Option<u32>,
}

/// Failure to start a run, or of the run itself.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(RunInputError),
    #[error(transparent)]
    Busy(StartError),
    #[error("model run {run_id} failed: {message}")]
    Failed { run_id: i64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for JobError {
    fn from(error: diesel::result::Error) -> Self {
        JobError::Store(StoreError::Query(error))
    }
}

/// A started run with everything the model needs.
pub struct PreparedRun {
    pub run: ModelRunRow,
    pub config: RunConfig,
    pub labeled: Vec<LabeledImage>,
    pub unlabeled: Vec<UnlabeledImage>,
    /// Names of the unlabeled items, by position in `unlabeled`.
    unlabeled_names: Vec<String>,
}

/// A progress report of a running job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressUpdate {
    pub run_id: i64,
    pub stage: &'static str,
    pub fraction: f64,
}

/// One scored item of a finished run, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedItem {
    pub item_id: i64,
    pub name: String,
    pub priority: f64,
    pub proposal: Option<(String, f64)>,
}

/// Outcome of a succeeded run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: i64,
    pub model_kind: String,
    pub evaluation: ml::Evaluation,
    pub train_images_per_second: f64,
    pub scored: usize,
    pub proposals: usize,
    /// Scored items by priority, highest first.
    pub ranked: Vec<RankedItem>,
}

fn strategy_names() -> Vec<String> {
    Strategy::ALL.iter().map(|strategy| strategy.name().to_string()).collect()
}

/// Checks a run request against the study and its labels, and inserts the running run.
///
/// Fails with [`JobError::Invalid`] naming the request key for an unknown field or strategy,
/// a setting out of range, or too few labels, and with [`JobError::Busy`] when the study has
/// a run running. Nothing is stored then.
pub fn prepare(
    conn: &mut DbConnection,
    settings: &Settings,
    project: &ProjectRow,
    request: &RunRequest,
    started_by: Option<i64>,
) -> Result<PreparedRun, JobError> {
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
    let classes = class_values(&guideline, &request.field).map_err(JobError::Invalid)?;
    let strategy: Strategy = request.strategy.parse().map_err(|_| {
        JobError::Invalid(RunInputError {
            key: "strategy",
            message: format!(
                "strategy {:?} is unknown; use one of: {}",
                request.strategy,
                strategy_names().join(", ")
            ),
            allowed: strategy_names(),
        })
    })?;
    let confidence_threshold = request.confidence_threshold.unwrap_or(project.pseudolabel_threshold);
    check_threshold("confidence_threshold", confidence_threshold).map_err(JobError::Invalid)?;
    let defaults = RunConfig::default();
    let epochs = request.epochs.unwrap_or(defaults.epochs as u32);
    check_epochs(epochs).map_err(JobError::Invalid)?;
    let resolution = request.resolution.unwrap_or(defaults.resolution);
    check_resolution(resolution).map_err(JobError::Invalid)?;

    let labeled_items = training_set(conn, project.id, &request.field, &classes)?;
    let mut counts = vec![0usize; classes.len()];
    for item in &labeled_items {
        counts[item.class_index] += 1;
    }
    check_labels(&request.field, &classes, &counts).map_err(JobError::Invalid)?;
    let unlabeled_items = unresolved_items(conn, project.id)?;

    let image_path = |sha256: &str| settings.data_dir().join(paths_for(sha256, "jpg").display);
    let labeled: Vec<LabeledImage> = labeled_items
        .iter()
        .map(|item| LabeledImage {
            item_id: item.image.item_id,
            path: image_path(&item.image.sha256),
            class: item.class_index,
            group: item.group.clone(),
        })
        .collect();
    let unlabeled: Vec<UnlabeledImage> = unlabeled_items
        .iter()
        .map(|item| UnlabeledImage { item_id: item.item_id, path: image_path(&item.sha256) })
        .collect();
    let unlabeled_names = unlabeled_items.into_iter().map(|item| item.name).collect();

    let config = RunConfig {
        classes,
        strategy,
        resolution,
        epochs: epochs as usize,
        confidence_threshold,
        models_dir: Some(settings.models_dir()),
        cache_dir: settings.data_dir().join("cache").join("embeddings"),
        ..defaults
    };
    let run_settings = serde_json::json!({
        "confidence_threshold": config.confidence_threshold,
        "epochs": config.epochs,
        "resolution": config.resolution,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "mc_samples": config.mc_samples,
        "holdout_fraction": config.holdout_fraction,
        "diversity_batch": config.diversity_batch,
        "seed": config.seed,
        "classes": config.classes,
        "labeled": labeled.len(),
        "unlabeled": unlabeled.len(),
    });
    let run = runs::create_run(conn, &NewRun {
        project_id: project.id,
        field: &request.field,
        strategy: strategy.name(),
        started_by,
        settings: run_settings,
    })
    .map_err(|error| match error {
        StartError::Store(store) => JobError::Store(store),
        busy => JobError::Busy(busy),
    })?;
    tracing::info!(
        run_id = run.id,
        project = %project.slug,
        field = %request.field,
        strategy = strategy.name(),
        labeled = labeled.len(),
        unlabeled = unlabeled.len(),
        "model run started"
    );
    Ok(PreparedRun { run, config, labeled, unlabeled, unlabeled_names })
}

/// Builds the event the study's stream receives about a run.
fn run_event(run_id: i64, status: &str, stage: &str, progress: f64, error: Option<&str>) -> serde_json::Value {
    let mut event = serde_json::json!({
        "type": "model_run",
        "run_id": run_id,
        "status": status,
        "stage": stage,
        "progress": progress,
    });
    if let Some(error) = error {
        event["error"] = serde_json::json!(error);
    }
    event
}

/// Checks that every image the run reads is on disk, so that a missing file fails the run
/// with the item's name instead of a path inside the data folder.
fn check_images(prepared: &PreparedRun) -> Result<(), String> {
    let labeled = prepared.labeled.iter().map(|image| (image.item_id, &image.path));
    let unlabeled = prepared.unlabeled.iter().map(|image| (image.item_id, &image.path));
    for (item_id, path) in labeled.chain(unlabeled) {
        if !path.is_file() {
            return Err(format!(
                "the display image of item {item_id} is missing ({}); import the image again or exclude the item",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Writes the run's heartbeat every [`runs::HEARTBEAT_INTERVAL_MS`] until the returned
/// sender is dropped.
fn start_heartbeat(db: &Database, run_id: i64) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let db = db.clone();
    let interval = Duration::from_millis(runs::HEARTBEAT_INTERVAL_MS as u64);
    let spawned = std::thread::Builder::new().name("quorum-run-heartbeat".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
            let written = db.conn().and_then(|mut conn| runs::record_heartbeat(&mut conn, run_id));
            if let Err(error) = written {
                tracing::warn!(run_id, %error, "the heartbeat of a model run could not be written");
            }
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(run_id, %error, "the heartbeat thread of a model run could not start");
    }
    stop
}

/// Trains and scores a prepared run and stores its outcome; see the module documentation.
///
/// `observer` receives every progress report of the model. Fails with [`JobError::Failed`] when
/// the model or the final write failed; the run row then holds the error.
pub fn execute(
    db: &Database,
    events: Option<&EventHub>,
    prepared: PreparedRun,
    observer: &mut dyn FnMut(ProgressUpdate),
) -> Result<RunSummary, JobError> {
    let run_id = prepared.run.id;
    let project_id = prepared.run.project_id;
    let publish = |event: serde_json::Value| {
        if let Some(events) = events {
            events.publish(Room::Study { project_id }, event);
        }
    };
    publish(run_event(run_id, "running", "starting", 0.0, None));

    let heartbeat = start_heartbeat(db, run_id);
    let outcome = train_and_score(db, &prepared, &publish, observer);
    drop(heartbeat);

    let stored = outcome.and_then(|output| store_output(db, &prepared, &output).map(|summary| (summary, output)));
    match stored {
        Ok((summary, _)) => {
            publish(run_event(run_id, "succeeded", "done", 1.0, None));
            tracing::info!(
                run_id,
                model_kind = %summary.model_kind,
                scored = summary.scored,
                proposals = summary.proposals,
                accuracy = summary.evaluation.accuracy,
                "model run succeeded"
            );
            Ok(summary)
        }
        Err(message) => {
            tracing::warn!(run_id, error = %message, "model run failed");
            if let Err(error) = db.conn().and_then(|mut conn| runs::fail_run(&mut conn, run_id, &message)) {
                tracing::error!(run_id, %error, "the failure of a model run could not be recorded");
            }
            publish(run_event(run_id, "failed", "failed", prepared.run.progress, Some(&message)));
            Err(JobError::Failed { run_id, message })
        }
    }
}

/// Runs the model, forwarding its progress; a panic inside the model becomes an error.
fn train_and_score(
    db: &Database,
    prepared: &PreparedRun,
    publish: &dyn Fn(serde_json::Value),
    observer: &mut dyn FnMut(ProgressUpdate),
) -> Result<ml::RunOutput, String> {
    check_images(prepared)?;
    let run_id = prepared.run.id;
    let mut last_write: Option<(Instant, &'static str)> = None;
    let mut on_progress = |progress: ml::Progress| {
        observer(ProgressUpdate { run_id, stage: progress.stage, fraction: progress.fraction });
        let due = match last_write {
            None => true,
            Some((at, stage)) => stage != progress.stage || at.elapsed() >= PROGRESS_WRITE_INTERVAL,
        };
        if !due {
            return;
        }
        last_write = Some((Instant::now(), progress.stage));
        if let Err(error) = db.conn().and_then(|mut conn| runs::record_progress(&mut conn, run_id, progress.fraction, progress.stage)) {
            tracing::warn!(run_id, %error, "the progress of a model run could not be written");
        }
        publish(run_event(run_id, "running", progress.stage, progress.fraction, None));
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ml::run(&prepared.config, &prepared.labeled, &prepared.unlabeled, &mut on_progress)
    }));
    match result {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "no message".to_string());
            Err(format!("the model stopped with an internal error: {text}"))
        }
    }
}

/// Stores a model's output as the run's predictions and priorities.
fn store_output(db: &Database, prepared: &PreparedRun, output: &ml::RunOutput) -> Result<RunSummary, String> {
    let classes = &prepared.config.classes;
    let names: std::collections::HashMap<i64, &str> = prepared
        .unlabeled
        .iter()
        .zip(&prepared.unlabeled_names)
        .map(|(image, name)| (image.item_id, name.as_str()))
        .collect();
    let mut predictions = Vec::with_capacity(output.scores.len());
    for score in &output.scores {
        let proposal = match score.proposal {
            Some(proposal) => {
                let value = classes
                    .get(proposal.class)
                    .ok_or_else(|| format!("the model proposed class {} of {} classes", proposal.class, classes.len()))?;
                Some((value.clone(), proposal.confidence))
            }
            None => None,
        };
        predictions.push(NewPrediction {
            item_id: score.item_id,
            probabilities: score.probabilities.clone(),
            scores: serde_json::json!({
                "entropy": score.entropy,
                "margin": score.margin,
                "least_confidence": score.least_confidence,
                "bald": score.bald,
                "cluster": score.cluster,
            }),
            embedding: score.embedding.iter().flat_map(|value| value.to_le_bytes()).collect(),
            proposal,
            priority: score.priority,
        });
    }
    let mut metrics = serde_json::to_value(&output.evaluation).map_err(|e| format!("the evaluation could not be encoded: {e}"))?;
    metrics["train_images_per_second"] = serde_json::json!(output.train_images_per_second);
    metrics["model_hash"] = serde_json::json!(output.model_hash);

    let run_id = prepared.run.id;
    let finished = FinishedRun { model_kind: &output.model_kind, metrics: &metrics, predictions: &predictions };
    let stored = db
        .conn()
        .and_then(|mut conn| runs::finish_run(&mut conn, run_id, &finished))
        .map_err(|error| format!("the predictions could not be stored: {error}"))?;
    if !stored {
        return Err("the run was marked failed while it ran because its heartbeat stopped; start a new run".to_string());
    }

    let mut ranked: Vec<RankedItem> = predictions
        .iter()
        .map(|prediction| RankedItem {
            item_id: prediction.item_id,
            name: names.get(&prediction.item_id).map_or_else(String::new, |name| name.to_string()),
            priority: prediction.priority,
            proposal: prediction.proposal.clone(),
        })
        .collect();
    ranked.sort_by(|a, b| b.priority.total_cmp(&a.priority).then(a.item_id.cmp(&b.item_id)));
    Ok(RunSummary {
        run_id,
        model_kind: output.model_kind.clone(),
        evaluation: output.evaluation.clone(),
        train_images_per_second: output.train_images_per_second,
        scored: predictions.len(),
        proposals: predictions.iter().filter(|prediction| prediction.proposal.is_some()).count(),
        ranked,
    })
}

/// Runs a prepared run on a thread of its own and returns at once. The outcome is stored in
/// the run row and published on the study's event stream.
///
/// Fails when the thread cannot start, and then marks the run failed.
pub fn spawn(db: Database, events: Arc<EventHub>, prepared: PreparedRun) -> std::io::Result<()> {
    let run_id = prepared.run.id;
    let job_db = db.clone();
    let spawned = std::thread::Builder::new().name(format!("quorum-model-run-{run_id}")).spawn(move || {
        // `execute` logs the outcome and records a failure in the run row.
        let _ = execute(&job_db, Some(&events), prepared, &mut |_| {});
    });
    if let Err(error) = &spawned {
        let message = format!("the job thread could not start: {error}");
        if let Err(store) = db.conn().and_then(|mut conn| runs::fail_run(&mut conn, run_id, &message)) {
            tracing::error!(run_id, error = %store, "the failure of a model run could not be recorded");
        }
    }
    spawned.map(|_| ())
}
