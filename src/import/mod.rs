//! Imports of grades and final labels made outside Quorum, from CSV files.
//!
//! - [`grades`]: one grade per row, stored as if submitted (`source = "import"`), so each
//!   item's round closes and the study's policy decides once the round has its grades.
//! - [`resolutions`]: one final label per row, stored as a resolution with method
//!   `imported`, which resolves the item.
//!
//! Both check the whole file first and list every problem found, each with its line and
//! column ("line 7, column dr_severity: ..."). Only a file without problems is stored, in one
//! transaction, and a problem met while storing (an item that left grading, for example)
//! rolls the whole file back, so a rejected file stores nothing.

pub mod grade_rows;
pub mod grades;
pub mod resolutions;
pub mod table;

use std::fmt;

use crate::domain::guideline::{FieldKind, Guideline};
use crate::store::StoreError;

pub use table::{read_table, Encoding, Row, Table};

/// At most this many problems are listed in an error; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// One problem of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// 1-based line, counting the header as line 1; 0 for the file as a whole.
    pub line: u64,
    /// Header name of the column, when the problem is in one cell.
    pub column: Option<String>,
    pub message: String,
}

impl ImportProblem {
    pub fn at(line: u64, column: Option<&str>, message: String) -> ImportProblem {
        ImportProblem {
            line,
            column: column.map(str::to_string),
            message,
        }
    }

    /// Builds a problem of the file as a whole, such as its encoding.
    pub fn file(message: String) -> ImportProblem {
        ImportProblem {
            line: 0,
            column: None,
            message,
        }
    }
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.column) {
            (0, _) => write!(f, "{}", self.message),
            (line, Some(column)) => write!(f, "line {line}, column {column}: {}", self.message),
            (line, None) => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// Reason an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}", describe_problems(.0))]
    Rejected(Vec<ImportProblem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    pub fn rejected(problem: ImportProblem) -> ImportError {
        ImportError::Rejected(vec![problem])
    }

    /// Returns the problems of a rejected file, none for a database failure.
    pub fn problems(&self) -> &[ImportProblem] {
        match self {
            ImportError::Rejected(problems) => problems,
            ImportError::Store(_) => &[],
        }
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        ImportError::Store(StoreError::Query(error))
    }
}

fn describe_problems(problems: &[ImportProblem]) -> String {
    let mut text = match problems.len() {
        1 => "the file was not imported, nothing was stored:".to_string(),
        n => format!("the file was not imported, nothing was stored; {n} problems:"),
    };
    for problem in problems.iter().take(MAX_LISTED_PROBLEMS) {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    if problems.len() > MAX_LISTED_PROBLEMS {
        text.push_str(&format!("\n  ... and {} more", problems.len() - MAX_LISTED_PROBLEMS));
    }
    text
}

/// Checks that every header name is a guideline field or one of `known`; returns a problem
/// on the header line for each other name.
fn check_columns(table: &Table, guideline: &Guideline, known: &[&str]) -> Vec<ImportProblem> {
    table
        .header
        .iter()
        .filter(|name| guideline.field(name).is_none() && !known.contains(&name.as_str()))
        .map(|name| {
            let fields: Vec<&str> = guideline.fields.iter().map(|field| field.name.as_str()).collect();
            ImportProblem::at(
                table.header_line,
                Some(name),
                format!(
                    "this column is neither a field of guideline {} {} ({}) nor one of {}; rename or remove it",
                    guideline.key,
                    guideline.version,
                    fields.join(", "),
                    known.join(", ")
                ),
            )
        })
        .collect()
}

/// Builds the answers of one row as the JSON object that
/// [`crate::domain::answers::validate_answers`] reads. Each field column with a non-empty cell
/// gives one entry, and a multi-choice cell is split on `|`.
fn answers_of(table: &Table, guideline: &Guideline, row: &Row) -> serde_json::Value {
    let mut answers = serde_json::Map::new();
    for field in &guideline.fields {
        let Some(index) = table.column(&field.name) else {
            continue;
        };
        let cell = &row.cells[index];
        let value = if field.kind == FieldKind::Text {
            cell.as_str()
        } else {
            cell.trim()
        };
        if value.trim().is_empty() {
            continue;
        }
        let answer = match field.kind {
            FieldKind::MultiChoice => serde_json::Value::Array(
                value
                    .split('|')
                    .map(|part| serde_json::Value::String(part.trim().to_string()))
                    .collect(),
            ),
            _ => serde_json::Value::String(value.to_string()),
        };
        answers.insert(field.name.clone(), answer);
    }
    serde_json::Value::Object(answers)
}
