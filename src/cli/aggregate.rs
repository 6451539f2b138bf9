//! `quorum aggregate FILE.csv`: one suggested label per item from several graders' ratings.
//!
//! Reads the table with [`crate::tabular`] and runs majority vote or Dawid-Skene from
//! [`crate::domain::aggregate`] (crowd-kit 1.4.2 conventions: ties go to the earliest
//! declared category, only labels that occur are modeled). The labels are suggestions for
//! the person who adjudicates.
//!
//! Dawid-Skene stops when the score gain falls below 1e-5, after at most 100 iterations,
//! unless `--iterations N` sets exactly N iterations.
//!
//! JSON layout, objects keeping input order (items and raters as they first appear,
//! categories in declared order):
//!
//! - always: `method`, `n_items`, `n_raters`, `categories`, `labels` (item id to label or
//!   `null` for an item without ratings);
//! - majority: `rater_agreement` (rater id to the share of their ratings equal to the
//!   majority label);
//! - Dawid-Skene: `categories_modeled`, `label_probability` (item id to the posterior of
//!   its label), `priors` (category to probability), `rater_accuracy`, `confusion` (rater
//!   id to a matrix whose rows are true categories and columns given labels, both in
//!   `categories_modeled` order), `iterations_run` and `score_history`.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::agreement::{read_grade_table, OutputFormat};
use crate::domain::aggregate::{self, DawidSkene, Responses, Stopping};
use crate::tabular::{GradeTable, TableOptions};

/// Aggregation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Most frequent label per item.
    Majority,
    /// Dawid-Skene EM with one confusion matrix per rater.
    DawidSkene,
}

/// Arguments of `quorum aggregate`.
#[derive(Debug, Clone, clap::Args)]
pub struct AggregateArgs {
    /// CSV grade table: long layout (item, rater, value columns) unless --wide is given.
    pub file: PathBuf,
    #[command(flatten)]
    pub table: TableOptions,
    /// Aggregation method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// Run exactly N Dawid-Skene iterations; without it, stop when the score gain falls
    /// below 1e-5, after at most 100 iterations.
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// Prints the suggested labels of `args.file` to standard output.
pub fn run(args: &AggregateArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_aggregate(args, &mut out)?;
    out.flush().context("cannot write to standard output")
}

/// Writes the suggested labels of `args.file` to `out`.
pub fn write_aggregate(args: &AggregateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.method == Method::Majority && args.iterations.is_some() {
        bail!("--iterations applies only to --method dawid-skene; remove it or change the method");
    }
    let table = read_grade_table(&args.file, &args.table)?;
    let responses = Responses::from_matrix(&table.matrix);

    match args.method {
        Method::Majority => {
            let labels = aggregate::majority_vote(&responses);
            let agreement = aggregate::majority_vote_rater_agreement(&responses);
            match args.format {
                OutputFormat::Json => write_json(out, &majority_json(&table, &labels, &agreement)),
                OutputFormat::Table => write_majority_text(out, &table, &labels, &agreement),
            }
        }
        Method::DawidSkene => {
            let stopping = match args.iterations {
                Some(iterations) => Stopping::Fixed { iterations },
                None => Stopping::default(),
            };
            let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
            let result = aggregate::dawid_skene(&responses, stopping, threads);
            match args.format {
                OutputFormat::Json => write_json(out, &dawid_skene_json(&table, &result)),
                OutputFormat::Table => write_dawid_skene_text(out, &table, &result, stopping),
            }
        }
    }
}

/// JSON value built in a fixed key order; serde_json's own map would sort the keys.
enum Json {
    Null,
    Number(f64),
    Integer(usize),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Number(value) => serializer.serialize_f64(*value),
            Json::Integer(value) => serializer.serialize_u64(*value as u64),
            Json::Text(text) => serializer.serialize_str(text),
            Json::List(items) => items.serialize(serializer),
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

fn label_of(table: &GradeTable, category: Option<usize>) -> Json {
    category.map_or(Json::Null, |index| Json::Text(table.matrix.categories()[index].label.clone()))
}

fn number_or_null(value: Option<f64>) -> Json {
    value.map_or(Json::Null, Json::Number)
}

/// Entries shared by both methods: method, shape, categories and labels.
fn common_json(table: &GradeTable, method: &str, labels: &[Option<usize>]) -> Vec<(String, Json)> {
    let categories = table.matrix.categories().iter().map(|category| Json::Text(category.label.clone())).collect();
    let labels = table.item_ids.iter().zip(labels).map(|(id, label)| (id.clone(), label_of(table, *label))).collect();
    vec![
        ("method".to_string(), Json::Text(method.to_string())),
        ("n_items".to_string(), Json::Integer(table.matrix.n_items())),
        ("n_raters".to_string(), Json::Integer(table.matrix.n_raters())),
        ("categories".to_string(), Json::List(categories)),
        ("labels".to_string(), Json::Object(labels)),
    ]
}

fn per_rater(table: &GradeTable, values: impl Iterator<Item = Json>) -> Json {
    Json::Object(table.rater_ids.iter().cloned().zip(values).collect())
}

fn majority_json(table: &GradeTable, labels: &[Option<usize>], agreement: &[Option<f64>]) -> Json {
    let mut entries = common_json(table, "majority", labels);
    entries
        .push(("rater_agreement".to_string(), per_rater(table, agreement.iter().map(|value| number_or_null(*value)))));
    Json::Object(entries)
}

fn dawid_skene_json(table: &GradeTable, result: &DawidSkene) -> Json {
    let mut entries = common_json(table, "dawid-skene", &result.labels);
    let modeled: Vec<String> =
        result.categories_modeled.iter().map(|&index| table.matrix.categories()[index].label.clone()).collect();

    let label_probability = table
        .item_ids
        .iter()
        .enumerate()
        .map(|(item, id)| (id.clone(), number_or_null(label_probability(result, item))))
        .collect();
    let priors = modeled.iter().cloned().zip(result.priors.iter().map(|&prior| Json::Number(prior))).collect();
    let confusion = result.confusion.iter().map(|matrix| match matrix {
        None => Json::Null,
        Some(rows) => Json::List(
            rows.iter().map(|row| Json::List(row.iter().map(|&value| Json::Number(value)).collect())).collect(),
        ),
    });

    entries.extend([
        ("categories_modeled".to_string(), Json::List(modeled.iter().cloned().map(Json::Text).collect())),
        ("label_probability".to_string(), Json::Object(label_probability)),
        ("priors".to_string(), Json::Object(priors)),
        (
            "rater_accuracy".to_string(),
            per_rater(table, result.rater_accuracy.iter().map(|value| number_or_null(*value))),
        ),
        ("confusion".to_string(), per_rater(table, confusion)),
        ("iterations_run".to_string(), Json::Integer(result.iterations_run)),
        (
            "score_history".to_string(),
            Json::List(result.score_history.iter().map(|&score| Json::Number(score)).collect()),
        ),
    ]);
    Json::Object(entries)
}

/// Posterior probability of the suggested label of `item`.
fn label_probability(result: &DawidSkene, item: usize) -> Option<f64> {
    let label = result.labels[item]?;
    let class = result.categories_modeled.iter().position(|&category| category == label)?;
    result.posterior(item).map(|posterior| posterior[class])
}

fn write_json(out: &mut impl Write, json: &Json) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, json).context("cannot write the JSON result")?;
    writeln!(out)?;
    Ok(())
}

/// Writes rows of cells with each column padded to its widest cell.
fn write_columns(out: &mut impl Write, rows: &[Vec<String>]) -> anyhow::Result<()> {
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns)
        .map(|column| rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        writeln!(out, "  {}", line.trim_end())?;
    }
    Ok(())
}

fn label_text(table: &GradeTable, category: Option<usize>) -> String {
    category.map_or_else(|| "(no ratings)".to_string(), |index| table.matrix.categories()[index].label.clone())
}

fn optional_number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |value| format!("{value:.4}"))
}

fn write_majority_text(
    out: &mut impl Write,
    table: &GradeTable,
    labels: &[Option<usize>],
    agreement: &[Option<f64>],
) -> anyhow::Result<()> {
    writeln!(
        out,
        "Majority vote over {} items and {} raters; ties go to the earliest declared category.",
        table.item_ids.len(),
        table.rater_ids.len()
    )?;
    writeln!(out)?;
    let mut rows = vec![vec!["item".to_string(), "suggested label".to_string()]];
    rows.extend(table.item_ids.iter().zip(labels).map(|(id, label)| vec![id.clone(), label_text(table, *label)]));
    write_columns(out, &rows)?;

    writeln!(out)?;
    writeln!(out, "Agreement of each rater with the majority label:")?;
    let mut rows = vec![vec!["rater".to_string(), "agreement".to_string()]];
    rows.extend(table.rater_ids.iter().zip(agreement).map(|(id, value)| vec![id.clone(), optional_number(*value)]));
    write_columns(out, &rows)
}

fn write_dawid_skene_text(
    out: &mut impl Write,
    table: &GradeTable,
    result: &DawidSkene,
    stopping: Stopping,
) -> anyhow::Result<()> {
    let stop_rule = match stopping {
        Stopping::Fixed { iterations } => format!("fixed at {iterations} iterations"),
        Stopping::Tolerance { max_iterations, tolerance } => {
            format!("stopping when the score gain falls below {tolerance:e}, at most {max_iterations} iterations")
        }
    };
    writeln!(
        out,
        "Dawid-Skene over {} items and {} raters: {} iterations run ({stop_rule}).",
        table.item_ids.len(),
        table.rater_ids.len(),
        result.iterations_run
    )?;
    writeln!(out)?;

    let mut rows = vec![vec!["item".to_string(), "suggested label".to_string(), "probability".to_string()]];
    for (item, id) in table.item_ids.iter().enumerate() {
        rows.push(vec![
            id.clone(),
            label_text(table, result.labels[item]),
            optional_number(label_probability(result, item)),
        ]);
    }
    write_columns(out, &rows)?;

    let modeled: Vec<String> =
        result.categories_modeled.iter().map(|&index| table.matrix.categories()[index].label.clone()).collect();
    writeln!(out)?;
    writeln!(out, "Prior probability of each category:")?;
    let mut rows = vec![vec!["category".to_string(), "prior".to_string()]];
    rows.extend(modeled.iter().zip(&result.priors).map(|(label, prior)| vec![label.clone(), format!("{prior:.4}")]));
    write_columns(out, &rows)?;

    writeln!(out)?;
    writeln!(out, "Estimated accuracy of each rater:")?;
    let mut rows = vec![vec!["rater".to_string(), "accuracy".to_string()]];
    rows.extend(
        table.rater_ids.iter().zip(&result.rater_accuracy).map(|(id, value)| vec![id.clone(), optional_number(*value)]),
    );
    write_columns(out, &rows)?;

    for (id, matrix) in table.rater_ids.iter().zip(&result.confusion) {
        let Some(matrix) = matrix else { continue };
        writeln!(out)?;
        writeln!(out, "Confusion matrix of rater {id} (rows: true category, columns: given label):")?;
        let mut rows = vec![std::iter::once(String::new()).chain(modeled.iter().cloned()).collect::<Vec<_>>()];
        for (label, row) in modeled.iter().zip(matrix) {
            rows.push(std::iter::once(label.clone()).chain(row.iter().map(|value| format!("{value:.4}"))).collect());
        }
        write_columns(out, &rows)?;
    }
    Ok(())
}
