//! `quorum al …`: active learning from the command line.
//!
//! `quorum al simulate` replays a labeling study on images that are all labeled already, to
//! compare selection strategies before graders spend time on them (see [`simulate`]).

mod curves;
pub mod simulate;

use std::path::PathBuf;

use crate::ml::{Strategy, DEFAULT_RESOLUTION};

/// Subcommands of `quorum al`.
#[derive(Debug, clap::Subcommand)]
pub enum AlCommand {
    /// Train a model on a study's resolved items, rank the items waiting for grades and
    /// propose pseudolabels.
    Run(super::al_run::RunArgs),
    /// Replay active learning on fully labeled images and write learning curves per strategy.
    Simulate(SimulateArgs),
}

/// Arguments of `quorum al simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Folder of the image files named in the labels file.
    #[arg(long, value_name = "DIR", value_parser = super::existing_path)]
    pub images: PathBuf,
    /// CSV file with one row per image: the image file name and the field's label.
    #[arg(long, value_name = "FILE.csv", value_parser = super::existing_path)]
    pub labels: PathBuf,
    /// Column of the labels file holding the field to learn.
    #[arg(long, value_name = "COL")]
    pub field: String,
    /// The field's values in ordinal order, comma-separated; by default the distinct values
    /// found, sorted (numerically when all are numbers).
    #[arg(long, value_name = "V1,V2,...", value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Selection strategies to compare, comma-separated: entropy, margin, least-confidence,
    /// bald, random.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "entropy,bald,random")]
    pub strategies: Vec<Strategy>,
    /// Seed of the splits, the model weights and every random choice.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Folder to write curves.csv and curves.svg to (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Column of the labels file holding the image file name.
    #[arg(long, value_name = "COL", default_value = "image")]
    pub image_column: String,
    /// Column holding a patient or other group id; a group is never split between the
    /// training pool and the test set. Without it, every image is its own group.
    #[arg(long, value_name = "COL")]
    pub group_column: Option<String>,
    /// Labeled images the first model is trained on, drawn at random from the pool.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub initial: usize,
    /// Images labeled per round, chosen by each strategy.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub batch: usize,
    /// Rounds of choosing a batch and retraining after the first model.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub rounds: usize,
    /// Share of the images (by group) held out as the test set.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Side of the square the images are resized to, in pixels.
    #[arg(long, value_name = "PX", default_value_t = DEFAULT_RESOLUTION)]
    pub resolution: u32,
    /// Training epochs of each model.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub epochs: usize,
    /// Folder with pretrained weights (see `crate::ml::pretrained` for the file names);
    /// without it the small CNN is trained from scratch.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
}

pub fn run(settings: &crate::config::Settings, command: AlCommand) -> anyhow::Result<()> {
    match command {
        AlCommand::Run(args) => super::al_run::run(settings, &args),
        AlCommand::Simulate(args) => simulate::run(&args),
    }
}
