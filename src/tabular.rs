//! Grade tables from CSV text: the reader behind `quorum agreement`, `quorum aggregate`
//! and grade import.
//!
//! Input handling:
//!
//! - The delimiter is detected from the header line: the most frequent of `,`, `;` and tab
//!   outside quotes, ties going in that order, and `,` when none occurs (one column).
//! - A UTF-8 byte-order mark is skipped. Text that is not UTF-8 is rejected with the line
//!   of the first invalid byte.
//! - Quoted fields keep delimiters and line breaks. Whitespace around every cell and
//!   header name is trimmed. Blank lines are skipped.
//! - Line numbers are 1-based with the header on line 1; a record that spans several lines
//!   is reported by the line it starts on.
//!
//! Layouts ([`TableOptions`]):
//!
//! - Long: one rating per line, with item, rater and value columns named in the header
//!   (`item`, `rater`, `value` by default). An empty value records no rating.
//! - Wide: the first column is the item id and every other column is a rater, named by
//!   its header. An empty cell is a missing rating. An item id may appear on several
//!   lines, whose ratings are merged.
//!
//! Categories: declared categories fix the order, and a value outside them is an error. A
//! value matches a declared category by its text or, when both are numbers, by numeric
//! equality (`1.0` matches `1`). Without declared categories, the distinct values are
//! sorted numerically when all of them are numbers (numerically equal spellings are one
//! category, named by the first spelling seen), and otherwise kept in order of first
//! appearance; text is never sorted alphabetically. Category values are the numbers when
//! every category label is a finite number, and the positions 0, 1, 2, ... otherwise.
//!
//! Items and raters keep the order in which they first appear. A rater who rates the same
//! item twice is an error naming both lines.

use std::collections::{HashMap, HashSet};

use crate::domain::ratings::{Category, RatingMatrix, RatingMatrixError};

/// Layout and column names of a grade table, and its declared categories.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct TableOptions {
    /// Read a wide table: first column the item id, one column per rater, empty cell = no rating.
    #[arg(long)]
    pub wide: bool,
    /// Header name of the item id column (long tables).
    #[arg(long, default_value = "item", conflicts_with = "wide")]
    pub item: String,
    /// Header name of the rater id column (long tables).
    #[arg(long, default_value = "rater", conflicts_with = "wide")]
    pub rater: String,
    /// Header name of the rating value column (long tables).
    #[arg(long, default_value = "value", conflicts_with = "wide")]
    pub value: String,
    /// Declared categories in order, comma-separated, e.g. 0,1,2,3,4. Without it the
    /// categories are the values found, sorted numerically when all are numbers and
    /// otherwise in order of first appearance.
    #[arg(long, value_delimiter = ',')]
    pub categories: Option<Vec<String>>,
}

impl Default for TableOptions {
    /// Returns the options of a long table with columns `item`, `rater` and `value` and categories taken from the data.
    fn default() -> Self {
        Self {
            wide: false,
            item: "item".to_string(),
            rater: "rater".to_string(),
            value: "value".to_string(),
            categories: None,
        }
    }
}

/// A grade table read into a rating matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeTable {
    pub matrix: RatingMatrix,
    /// Item id of each matrix row, in order of first appearance.
    pub item_ids: Vec<String>,
    /// Rater id of each matrix column, in order of first appearance.
    pub rater_ids: Vec<String>,
}

/// Error reading a grade table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error("line {line} is not valid UTF-8 text; save the file with UTF-8 encoding")]
    NotUtf8 { line: u64 },
    #[error("line {line}: invalid CSV: {message}")]
    Csv { line: u64, message: String },
    #[error("the table is empty; the first line must be a header")]
    Empty,
    #[error("the header (line 1) has no {role} column {column:?}; its columns are {header:?}; name the {role} column by its header text")]
    MissingColumn { role: &'static str, column: String, header: Vec<String> },
    #[error("the header (line 1) names column {column:?} twice (columns {first} and {second}); give each column a unique name")]
    DuplicateColumn { column: String, first: usize, second: usize },
    #[error("the header (line 1) has an empty name in column {position}; name every rater column")]
    EmptyHeader { position: usize },
    #[error("a wide table needs an item column and at least one rater column, but the header (line 1) has {found} column(s)")]
    NoRaterColumns { found: usize },
    #[error(
        "line {line} has {found} fields but the header has {expected}; check the delimiter and quoting on that line"
    )]
    FieldCount { line: u64, found: usize, expected: usize },
    #[error("line {line}, column {column:?}: the {role} id is empty; fill it in or remove the line")]
    EmptyId { line: u64, column: String, role: &'static str },
    #[error("line {line}, column {column:?}: value {value:?} is not a declared category; allowed values are {allowed}; correct the value or declare it as a category")]
    UnknownCategory { line: u64, column: String, value: String, allowed: String },
    #[error("rater {rater:?} rated item {item:?} twice, on line {first_line} and line {second_line}; keep one of the two ratings")]
    DuplicateRating { item: String, rater: String, first_line: u64, second_line: u64 },
    #[error("declared category {position} is empty; remove the extra comma from the category list")]
    EmptyCategory { position: usize },
    #[error("category {label:?} is declared twice; declare each category once")]
    DuplicateCategory { label: String },
    #[error("the table contains no ratings, so no categories can be inferred; add ratings or declare the categories")]
    NoRatings,
    #[error(transparent)]
    Matrix(#[from] RatingMatrixError),
}

/// One non-empty rating as read, before categories are resolved.
struct RawRating {
    item: usize,
    rater: usize,
    value: String,
    line: u64,
    column: usize,
}

/// Ids in order of first appearance, with their index.
#[derive(Default)]
struct IdOrder {
    ids: Vec<String>,
    index: HashMap<String, usize>,
}

impl IdOrder {
    fn intern(&mut self, id: &str) -> usize {
        if let Some(&index) = self.index.get(id) {
            return index;
        }
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), self.ids.len() - 1);
        self.ids.len() - 1
    }
}

/// Reads a grade table from CSV bytes.
pub fn parse_grade_table(bytes: &[u8], options: &TableOptions) -> Result<GradeTable, TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let line = bytes[..error.valid_up_to()].iter().filter(|&&byte| byte == b'\n').count() as u64 + 1;
        TableError::NotUtf8 { line }
    })?;

    let mut reader = csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(text))
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().map_err(csv_error)?.iter().map(str::to_string).collect();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(TableError::Empty);
    }

    let mut items = IdOrder::default();
    let mut raters = IdOrder::default();
    let mut ratings = Vec::new();
    if options.wide {
        read_wide(&mut reader, &header, &mut items, &mut raters, &mut ratings)?;
    } else {
        read_long(&mut reader, &header, options, &mut items, &mut raters, &mut ratings)?;
    }
    check_duplicates(&ratings, &items.ids, &raters.ids)?;

    let (categories, category_of_rating) = resolve_categories(&ratings, &header, options.categories.as_deref())?;
    let mut rows = vec![vec![None; raters.ids.len()]; items.ids.len()];
    for (rating, category) in ratings.iter().zip(category_of_rating) {
        rows[rating.item][rating.rater] = Some(category);
    }
    let matrix = RatingMatrix::new(categories, &rows)?;
    Ok(GradeTable { matrix, item_ids: items.ids, rater_ids: raters.ids })
}

/// Picks the most frequent of `,`, `;` and tab outside quotes on the header line.
fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for byte in text.bytes() {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(entry) = counts.iter_mut().find(|(delimiter, _)| *delimiter == byte) {
                    entry.1 += 1;
                }
            }
            _ => {}
        }
    }
    // `max_by_key` keeps the last of equal maxima, so scan in reverse to prefer the first.
    counts.iter().rev().max_by_key(|(_, count)| *count).map_or(b',', |&(delimiter, _)| delimiter)
}

fn csv_error(error: csv::Error) -> TableError {
    let line = error.position().map_or(0, csv::Position::line);
    TableError::Csv { line, message: error.to_string() }
}

/// Finds the column named `name`; error messages count columns from 1.
fn find_column(header: &[String], name: &str, role: &'static str) -> Result<usize, TableError> {
    let mut matches = header.iter().enumerate().filter(|(_, column)| *column == name).map(|(index, _)| index);
    let first = matches.next().ok_or_else(|| TableError::MissingColumn {
        role,
        column: name.to_string(),
        header: header.to_vec(),
    })?;
    if let Some(second) = matches.next() {
        return Err(TableError::DuplicateColumn { column: name.to_string(), first: first + 1, second: second + 1 });
    }
    Ok(first)
}

/// Reads the next record, checking its field count; `None` at the end of the input.
fn next_record(
    reader: &mut csv::Reader<&[u8]>,
    n_columns: usize,
) -> Result<Option<(u64, csv::StringRecord)>, TableError> {
    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record).map_err(csv_error)? {
        return Ok(None);
    }
    let line = record.position().map_or(0, csv::Position::line);
    if record.len() != n_columns {
        return Err(TableError::FieldCount { line, found: record.len(), expected: n_columns });
    }
    Ok(Some((line, record)))
}

fn read_long(
    reader: &mut csv::Reader<&[u8]>,
    header: &[String],
    options: &TableOptions,
    items: &mut IdOrder,
    raters: &mut IdOrder,
    ratings: &mut Vec<RawRating>,
) -> Result<(), TableError> {
    let item_column = find_column(header, &options.item, "item")?;
    let rater_column = find_column(header, &options.rater, "rater")?;
    let value_column = find_column(header, &options.value, "value")?;

    while let Some((line, record)) = next_record(reader, header.len())? {
        let item_id = &record[item_column];
        if item_id.is_empty() {
            return Err(TableError::EmptyId { line, column: header[item_column].clone(), role: "item" });
        }
        let rater_id = &record[rater_column];
        if rater_id.is_empty() {
            return Err(TableError::EmptyId { line, column: header[rater_column].clone(), role: "rater" });
        }
        let item = items.intern(item_id);
        let rater = raters.intern(rater_id);

        let value = &record[value_column];
        if !value.is_empty() {
            ratings.push(RawRating { item, rater, value: value.to_string(), line, column: value_column });
        }
    }
    Ok(())
}

fn read_wide(
    reader: &mut csv::Reader<&[u8]>,
    header: &[String],
    items: &mut IdOrder,
    raters: &mut IdOrder,
    ratings: &mut Vec<RawRating>,
) -> Result<(), TableError> {
    if header.len() < 2 {
        return Err(TableError::NoRaterColumns { found: header.len() });
    }
    for (position, name) in header.iter().enumerate().skip(1) {
        if name.is_empty() {
            return Err(TableError::EmptyHeader { position: position + 1 });
        }
        if let Some(first) = header[1..position].iter().position(|other| other == name) {
            return Err(TableError::DuplicateColumn { column: name.clone(), first: first + 2, second: position + 1 });
        }
        raters.intern(name);
    }

    while let Some((line, record)) = next_record(reader, header.len())? {
        let item_id = &record[0];
        if item_id.is_empty() {
            return Err(TableError::EmptyId { line, column: header[0].clone(), role: "item" });
        }
        let item = items.intern(item_id);
        for (column, value) in record.iter().enumerate().skip(1) {
            if !value.is_empty() {
                ratings.push(RawRating { item, rater: column - 1, value: value.to_string(), line, column });
            }
        }
    }
    Ok(())
}

fn check_duplicates(ratings: &[RawRating], item_ids: &[String], rater_ids: &[String]) -> Result<(), TableError> {
    let mut first_line: HashMap<(usize, usize), u64> = HashMap::with_capacity(ratings.len());
    for rating in ratings {
        if let Some(&line) = first_line.get(&(rating.item, rating.rater)) {
            return Err(TableError::DuplicateRating {
                item: item_ids[rating.item].clone(),
                rater: rater_ids[rating.rater].clone(),
                first_line: line,
                second_line: rating.line,
            });
        }
        first_line.insert((rating.item, rating.rater), rating.line);
    }
    Ok(())
}

/// Parses `text` as a finite number.
fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

/// Builds the categories and the category index of each rating.
fn resolve_categories(
    ratings: &[RawRating],
    header: &[String],
    declared: Option<&[String]>,
) -> Result<(Vec<Category>, Vec<u32>), TableError> {
    let labels: Vec<String> = match declared {
        Some(declared) => declared.iter().map(|label| label.trim().to_string()).collect(),
        None => inferred_labels(ratings)?,
    };
    for (index, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(TableError::EmptyCategory { position: index + 1 });
        }
        if labels[..index].contains(label) {
            return Err(TableError::DuplicateCategory { label: label.clone() });
        }
    }

    let numbers: Vec<Option<f64>> = labels.iter().map(|label| parse_number(label)).collect();
    let by_label: HashMap<&str, usize> =
        labels.iter().enumerate().map(|(index, label)| (label.as_str(), index)).collect();
    let mut indices = Vec::with_capacity(ratings.len());
    for rating in ratings {
        let found = by_label.get(rating.value.as_str()).copied().or_else(|| {
            let number = parse_number(&rating.value)?;
            numbers.iter().position(|candidate| *candidate == Some(number))
        });
        let Some(index) = found else {
            return Err(TableError::UnknownCategory {
                line: rating.line,
                column: header[rating.column].clone(),
                value: rating.value.clone(),
                allowed: labels.join(", "),
            });
        };
        indices.push(index as u32);
    }

    let all_numeric = numbers.iter().all(Option::is_some);
    let categories = labels
        .into_iter()
        .zip(&numbers)
        .enumerate()
        .map(|(position, (label, number))| Category {
            label,
            value: if all_numeric { number.unwrap_or_default() } else { position as f64 },
        })
        .collect();
    Ok((categories, indices))
}

/// Lists the distinct values, sorted numerically when all are numbers, else in order of first appearance.
fn inferred_labels(ratings: &[RawRating]) -> Result<Vec<String>, TableError> {
    if ratings.is_empty() {
        return Err(TableError::NoRatings);
    }

    let mut labels: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for rating in ratings {
        if seen.insert(&rating.value) {
            labels.push(rating.value.clone());
        }
    }
    let numbers: Option<Vec<f64>> = labels.iter().map(|label| parse_number(label)).collect();
    let Some(numbers) = numbers else {
        return Ok(labels);
    };

    // Numerically equal spellings ("1", "1.0") form one category named by the first.
    let mut numeric: Vec<(f64, String)> = Vec::new();
    for (number, label) in numbers.into_iter().zip(labels) {
        if !numeric.iter().any(|(seen, _)| *seen == number) {
            numeric.push((number, label));
        }
    }
    numeric.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(numeric.into_iter().map(|(_, label)| label).collect())
}
