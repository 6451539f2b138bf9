//! Reads an import file into a header and rows that remember their line numbers.
//!
//! - UTF-8 (a byte-order mark is skipped) or, on request, Latin-1 (ISO-8859-1). Text that is
//!   not UTF-8 is rejected with the line of the first invalid byte.
//! - The delimiter is `,`, `;` or tab, whichever occurs most often in the header line.
//! - Quoting follows RFC 4180: a quoted cell keeps delimiters, quotes written twice and line
//!   breaks. A row that spans several lines is reported by the line it starts on.
//! - Header names are trimmed; blank lines are skipped.

use super::{ImportError, ImportProblem};
use crate::csvio::{decode_utf8, detect_delimiter};

/// Text encoding of an import file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    Utf8,
    /// ISO-8859-1: every byte is one character.
    Latin1,
}

/// One data row: its 1-based line and its cells, as many as the header has columns.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

/// A parsed import file.
#[derive(Debug, Clone)]
pub struct Table {
    /// Line of the header row (1 unless blank lines precede it).
    pub header_line: u64,
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

impl Table {
    /// Returns the index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|column| column == name)
    }
}

/// Decodes and parses a whole file.
///
/// Fails with one problem: text that is not UTF-8 (its line), a CSV syntax error, an empty
/// or repeated header name, or a row whose cell count differs from the header's.
pub fn read_table(bytes: &[u8], encoding: Encoding) -> Result<Table, ImportError> {
    let text: std::borrow::Cow<'_, str> = match encoding {
        Encoding::Utf8 => decode_utf8(bytes)
            .map_err(|error| {
                ImportError::rejected(ImportProblem::file(format!(
                    "{error}, or pass --encoding latin1 if it is Latin-1 (ISO-8859-1)"
                )))
            })?
            .into(),
        Encoding::Latin1 => bytes.iter().map(|&byte| char::from(byte)).collect::<String>().into(),
    };
    let delimiter = detect_delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());

    let mut lines = LineCounter::new(text.as_bytes());
    let mut header: Option<(u64, Vec<String>)> = None;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| {
            let line = error.position().map_or(0, |position| lines.line_at(position.byte()));
            ImportError::rejected(ImportProblem::at(
                line,
                None,
                format!("the CSV text is invalid: {error}"),
            ))
        })?;
        let line = record.position().map_or(0, |position| lines.line_at(position.byte()));
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let Some((_, names)) = &header else {
            header = Some((line, check_header(&record, line)?));
            continue;
        };
        if record.len() != names.len() {
            return Err(ImportError::rejected(ImportProblem::at(
                line,
                None,
                format!(
                    "the row has {} cells but the header has {} columns; check the delimiter ({:?}) and the quotes",
                    record.len(),
                    names.len(),
                    char::from(delimiter)
                ),
            )));
        }
        rows.push(Row {
            line,
            cells: record.iter().map(str::to_string).collect(),
        });
    }
    let (header_line, header) = header
        .ok_or_else(|| ImportError::rejected(ImportProblem::file("the file is empty: it has no header row".into())))?;
    Ok(Table {
        header_line,
        header,
        rows,
    })
}

/// Turns the byte offset where the csv crate starts a record into the record's line.
///
/// csv 1.4 reports a record's start before the line break that ends the previous record, and
/// its line count lags by one after a CRLF. So the line is counted here instead, as the line
/// breaks before the first byte of the record's text, plus one.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record that starts at `byte`; offsets must not decrease.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.offset {
            self.line += self.text[self.offset..start].iter().filter(|&&b| b == b'\n').count() as u64;
            self.offset = start;
        }
        self.line
    }
}

fn check_header(record: &csv::StringRecord, line: u64) -> Result<Vec<String>, ImportError> {
    let names: Vec<String> = record.iter().map(|name| name.trim().to_string()).collect();
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(ImportError::rejected(ImportProblem::at(
                line,
                None,
                format!("header column {} has no name; name every column", index + 1),
            )));
        }
        if names[..index].contains(name) {
            return Err(ImportError::rejected(ImportProblem::at(
                line,
                Some(name),
                "the header names this column twice; keep one".into(),
            )));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_bom_and_quoted_newlines() {
        let text = "\u{feff}image;grader;comment\r\na.jpg;ann;\"two\nlines; and a ;\"\r\n\r\nb.jpg;bob;plain\r\n";
        let table = read_table(text.as_bytes(), Encoding::Utf8).expect("valid table");
        assert_eq!(table.header, ["image", "grader", "comment"]);
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[0].cells[2], "two\nlines; and a ;");
        assert_eq!(table.rows[0].line, 2);
        assert_eq!(table.rows[1].line, 5);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let bytes = b"image,grader\na.jpg,ann\nb.jpg,J\xf6rg\n";
        let error = read_table(bytes, Encoding::Utf8).unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        let table = read_table(bytes, Encoding::Latin1).expect("Latin-1 reads any byte");
        assert_eq!(table.rows[1].cells[1], "Jörg");
    }

    #[test]
    fn short_row_is_rejected_with_its_line() {
        let error = read_table(b"image,grader\na.jpg\n", Encoding::Utf8)
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn repeated_header_name_is_rejected() {
        let error = read_table(b"image,image\n", Encoding::Utf8).unwrap_err().to_string();
        assert!(error.contains("column image"), "{error}");
    }
}
