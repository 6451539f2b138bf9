//! `quorum agreement FILE.csv`: agreement coefficients of a grade table.
//!
//! Reads the table with [`crate::tabular`], computes every coefficient of
//! [`crate::domain::agreement::compute_all`] and prints them as an aligned table (default)
//! or as one JSON object. With `--bootstrap N`, percentile intervals at the 95% level come
//! from N resamples of the items.
//!
//! JSON layout: `n_items`, `n_raters`, `categories`, then one key per metric with its
//! value or `null`, then `undefined` (metric name to reason). With `--bootstrap`, `ci` maps
//! metric names to `[lower, upper]` and leaves out metrics without an interval.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::domain::agreement::{self, AgreementReport};
use crate::tabular::{self, GradeTable, TableError, TableOptions};

/// Confidence level of bootstrap intervals.
const CONFIDENCE_LEVEL: f64 = 0.95;

/// Output format of a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for reading.
    #[default]
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `quorum agreement`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgreementArgs {
    /// CSV grade table: long layout (item, rater, value columns) unless --wide is given.
    pub file: PathBuf,
    #[command(flatten)]
    pub table: TableOptions,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Number of bootstrap resamples of the items for 95% confidence intervals; none by default.
    #[arg(long, value_name = "N")]
    pub bootstrap: Option<usize>,
    /// Seed of the bootstrap resampling, so that intervals can be reproduced.
    #[arg(long, value_name = "S", default_value_t = 1, requires = "bootstrap")]
    pub seed: u64,
}

/// Prints the agreement report of `args.file` to standard output.
pub fn run(args: &AgreementArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_agreement(args, &mut out)?;
    out.flush().context("cannot write to standard output")
}

/// Writes the agreement report of `args.file` to `out`.
pub fn write_agreement(args: &AgreementArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let table = read_grade_table(&args.file, &args.table)?;
    let report = agreement::compute_all(&table.matrix);
    let intervals =
        args.bootstrap.map(|replicates| agreement::bootstrap(&table.matrix, replicates, args.seed, CONFIDENCE_LEVEL));

    match args.format {
        OutputFormat::Json => write_json(&table, &report, intervals.as_ref(), out),
        OutputFormat::Table => write_text(&table, &report, intervals.as_ref(), out),
    }
}

/// Reads and parses a grade table file, naming the file in any error.
pub(crate) fn read_grade_table(path: &Path, options: &TableOptions) -> anyhow::Result<GradeTable> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read grade table {}", path.display()))?;
    tabular::parse_grade_table(&bytes, options).map_err(|error| {
        let hint = match &error {
            TableError::MissingColumn { role, .. } => {
                format!("; choose the {role} column with --{role} NAME, or pass --wide for a wide table")
            }
            _ => String::new(),
        };
        anyhow::Error::new(error).context(format!("invalid grade table {}{hint}", path.display()))
    })
}

#[derive(Serialize)]
struct JsonReport<'a> {
    n_items: usize,
    n_raters: usize,
    categories: Vec<&'a str>,
    #[serde(flatten)]
    metrics: BTreeMap<&'a str, Option<f64>>,
    undefined: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci: Option<BTreeMap<&'a str, [f64; 2]>>,
}

fn write_json(
    table: &GradeTable,
    report: &AgreementReport,
    intervals: Option<&BTreeMap<String, (f64, f64)>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut metrics: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (name, value) in &report.values {
        metrics.insert(name, Some(*value));
    }
    for name in report.undefined.keys() {
        metrics.insert(name, None);
    }

    let json = JsonReport {
        n_items: table.matrix.n_items(),
        n_raters: table.matrix.n_raters(),
        categories: table.matrix.categories().iter().map(|category| category.label.as_str()).collect(),
        metrics,
        undefined: &report.undefined,
        ci: intervals
            .map(|intervals| intervals.iter().map(|(name, &(lower, upper))| (name.as_str(), [lower, upper])).collect()),
    };
    serde_json::to_writer_pretty(&mut *out, &json).context("cannot write the JSON report")?;
    writeln!(out)?;
    Ok(())
}

fn write_text(
    table: &GradeTable,
    report: &AgreementReport,
    intervals: Option<&BTreeMap<String, (f64, f64)>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let labels: Vec<&str> = table.matrix.categories().iter().map(|category| category.label.as_str()).collect();
    writeln!(
        out,
        "{} items, {} raters, categories {}",
        table.matrix.n_items(),
        table.matrix.n_raters(),
        labels.join(", ")
    )?;
    writeln!(out)?;

    let names: Vec<&String> = {
        let mut names: Vec<&String> = report.values.keys().chain(report.undefined.keys()).collect();
        names.sort();
        names
    };
    let name_width = names.iter().map(|name| name.len()).max().unwrap_or(0).max("metric".len());

    let ci_header = if intervals.is_some() { format!("  {:<18}", "95% CI") } else { String::new() };
    let header = format!("{:<name_width$}  {:>8}{ci_header}  note", "metric", "value");
    writeln!(out, "{}", header.trim_end())?;
    for name in names {
        let value = report.values.get(name).map_or_else(|| "-".to_string(), |value| format!("{value:.4}"));
        let ci = match intervals {
            None => String::new(),
            Some(intervals) => {
                let text = intervals
                    .get(name)
                    .map_or_else(|| "-".to_string(), |(lower, upper)| format!("[{lower:.4}, {upper:.4}]"));
                format!("  {text:<18}")
            }
        };
        let note = report.undefined.get(name).map_or(String::new(), |reason| format!("undefined: {reason}"));
        let line = format!("{name:<name_width$}  {value:>8}{ci}  {note}");
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
