//! `quorum al run --project SLUG --field FIELD`: trains a model on a study's resolved items,
//! ranks the items still waiting for grades and proposes pseudolabels, in the foreground.
//!
//! It runs the same job as `POST /api/v1/projects/{slug}/model-runs` ([`crate::jobs`])
//! against the database named by `--database-url` or `--data-dir`, shows the progress on
//! stderr and prints the run's summary: run id, model, evaluation, and the top of the ranked
//! queue. A server on the same database serves the new priorities at once.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::open_database;
use crate::config::Settings;
use crate::jobs::{self, JobError, ProgressUpdate, RunRequest, RunSummary};
use crate::store::{projects, Database};

/// Steps of the progress bar.
const BAR_STEPS: u64 = 1000;

/// Arguments of `quorum al run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Slug of the study.
    #[arg(long)]
    pub project: String,
    /// Guideline field the model learns: a single-choice field such as dr_severity.
    #[arg(long)]
    pub field: String,
    /// How items waiting for grades are ranked: entropy, margin, least-confidence, bald or
    /// random.
    #[arg(long, default_value = "entropy")]
    pub strategy: String,
    /// Lowest model confidence (above 0, at most 1) at which an item gets a pseudolabel
    /// proposal [default: the study's pseudolabel threshold].
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Training epochs [default: the model's default].
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Side of the square the images are resized to, in pixels [default: the model's
    /// default].
    #[arg(long)]
    pub resolution: Option<u32>,
    /// Items of the ranked queue to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// Names the command-line option of a request key, for error messages.
fn option_of(key: &str) -> &'static str {
    match key {
        "strategy" => "--strategy",
        "confidence_threshold" => "--confidence",
        "epochs" => "--epochs",
        "resolution" => "--resolution",
        _ => "--field",
    }
}

/// Starts and runs a model run in this process; the job the command runs. `progress` receives
/// every progress report.
///
/// Fails when the study does not exist, the request is invalid (the message names the
/// option), the study has a run running, or the run fails (the run row then holds the error).
pub fn run_job(
    db: &Database,
    settings: &Settings,
    args: &RunArgs,
    progress: &mut dyn FnMut(ProgressUpdate),
) -> anyhow::Result<RunSummary> {
    let mut conn = db.conn()?;
    let project = projects::find_by_slug(&mut conn, &args.project)?
        .ok_or_else(|| anyhow::anyhow!("no study with slug {:?}; list the studies on the server's /studies page", args.project))?;
    let request = RunRequest {
        field: args.field.clone(),
        strategy: args.strategy.clone(),
        confidence_threshold: args.confidence,
        epochs: args.epochs,
        resolution: args.resolution,
    };
    let prepared = jobs::prepare(&mut conn, settings, &project, &request, None).map_err(|error| match error {
        JobError::Invalid(input) => anyhow::anyhow!("invalid {}: {}", option_of(input.key), input.message),
        other => anyhow::Error::new(other),
    })?;
    drop(conn);
    let run_id = prepared.run.id;
    jobs::execute(db, None, prepared, progress).with_context(|| format!("model run {run_id} of study {}", args.project))
}

/// Runs the command: the job with a progress bar on stderr, then the summary on stdout.
pub fn run(settings: &Settings, args: &RunArgs) -> anyhow::Result<()> {
    let db = open_database(settings)?;
    let bar = ProgressBar::new(BAR_STEPS);
    bar.set_style(
        ProgressStyle::with_template("{spinner} run {prefix} {msg:<12} [{bar:40}] {percent:>3}% {elapsed}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let result = run_job(&db, settings, args, &mut |update| {
        bar.set_prefix(update.run_id.to_string());
        bar.set_message(update.stage);
        bar.set_position((update.fraction.clamp(0.0, 1.0) * BAR_STEPS as f64).round() as u64);
    });
    bar.finish_and_clear();
    let summary = result?;
    print!("{}", describe(&summary, args.top));
    Ok(())
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "undefined".to_string(), |value| format!("{value:.3}"))
}

/// Formats a succeeded run for the terminal.
pub fn describe(summary: &RunSummary, top: usize) -> String {
    let evaluation = &summary.evaluation;
    let mut text = format!(
        "model run {} succeeded: {} model, {} items scored, {} pseudolabel proposals\n",
        summary.run_id, summary.model_kind, summary.scored, summary.proposals
    );
    text.push_str(&format!(
        "evaluation on {} held-out items (trained on {}): accuracy {}, balanced accuracy {}, quadratic kappa {}, expected calibration error {}\n",
        evaluation.heldout_count,
        evaluation.train_count,
        number(Some(evaluation.accuracy)),
        number(Some(evaluation.balanced_accuracy)),
        number(evaluation.quadratic_kappa),
        number(Some(evaluation.ece)),
    ));
    text.push_str(&format!("training speed: {:.1} images per second\n", summary.train_images_per_second));
    if summary.ranked.is_empty() {
        text.push_str("no item is waiting for grades, so none was ranked\n");
        return text;
    }
    text.push_str(&format!("top {} of the ranked queue:\n", top.min(summary.ranked.len())));
    text.push_str(&format!("{:>5}  {:>8}  {:>10}  {:<32}  {}\n", "rank", "item", "priority", "image", "proposal"));
    for (index, item) in summary.ranked.iter().take(top).enumerate() {
        let proposal = item
            .proposal
            .as_ref()
            .map_or_else(String::new, |(value, confidence)| format!("{value} ({confidence:.3})"));
        text.push_str(&format!(
            "{:>5}  {:>8}  {:>10.1}  {:<32}  {}\n",
            index + 1,
            item.item_id,
            item.priority,
            item.name,
            proposal
        ));
    }
    text
}
