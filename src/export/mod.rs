//! The export a study lead delivers with a paper: the reference standard with its full
//! provenance.
//!
//! Files, written in this order:
//!
//! - `grades.csv`: every grade in long format ([`grades`]).
//! - `reference.csv`: one row per item with its final values ([`reference`]).
//! - `pseudolabels.csv`: model proposals, only when there are any ([`pseudolabels`]).
//! - `provenance.json`: the study, guideline, members and every item's grades, messages
//!   and resolutions, with the SHA-256 of every other file ([`provenance`]).
//! - `agreement.md` and `agreement.html`: agreement per field ([`agreement`]), computed on a
//!   second thread while `provenance.json` is written.
//!
//! Every file is read inside one read-only snapshot of the database (a repeatable-read
//! transaction on PostgreSQL, a read transaction on SQLite in WAL mode), so its files agree
//! with each other while graders keep working. Rows are read one page at a time on a second
//! thread ([`pipeline`]) and written as they come. What the export keeps grows slowly with the
//! study: 12 bytes per item (ids and grade counts), about 8 bytes plus 2 per single-choice
//! field for each round-0 grade (the agreement report's ratings), and one field's rating
//! matrix at a time.
//!
//! Apart from the `export` object at the end of `provenance.json`, the files hold no export
//! time, so exporting the same database twice gives the same bytes.

pub mod agreement;
pub mod agreement_html;
pub mod context;
pub mod format;
pub mod grades;
pub mod pipeline;
pub mod provenance;
pub mod pseudolabels;
pub mod ratings;
pub mod reference;
pub mod rows;
pub mod stored;

use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use self::context::StudyContext;
use self::format::HashingWriter;
use self::provenance::ExportStamp;
use self::ratings::RatingCollector;
use crate::store::models::ProjectRow;
use crate::store::{DbConnection, StoreError};

/// Failure of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing CSV failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing the zip archive failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Chart(#[from] crate::charts::ChartError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// How to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Name graders by username instead of by their pseudonym in the study.
    pub real_names: bool,
    /// Export time in epoch milliseconds; written only into the `export` object of
    /// `provenance.json` and the zip entries' times.
    pub exported_at: i64,
}

/// One written file: its name, SHA-256 (hex) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Files and counts of a finished export.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// Every file in writing order.
    pub files: Vec<ExportedFile>,
    pub items: usize,
    pub grade_rows: u64,
}

/// The body of one file: writes its bytes to the writer it is given.
pub type FileBody<'a> = dyn FnMut(&mut dyn Write) -> Result<(), ExportError> + 'a;

/// Destination of the export files: a folder or a zip archive.
pub trait ExportSink {
    /// Creates the file `name` and runs `body` once to write it.
    fn write_file(&mut self, name: &str, body: &mut FileBody<'_>) -> Result<(), ExportError>;
}

/// Exports a study into `sink`.
///
/// Fails on a database error, a write error, or stored rows that cannot be read (answers
/// or metadata that are not JSON objects).
pub fn export_study(
    conn: &mut DbConnection,
    project: ProjectRow,
    options: &ExportOptions,
    sink: &mut dyn ExportSink,
) -> Result<ExportSummary, ExportError> {
    // The pool's SQLite connections map part of the database file into memory. An export
    // reads the whole study once, so the map would only add the file's pages to the
    // process's resident memory. It is switched off for the export and restored after.
    let mmap_size = sqlite_mmap_size(conn)?;
    if mmap_size.is_some() {
        set_sqlite_mmap_size(conn, 0)?;
    }
    let result = export_snapshot(conn, project, options, sink);
    if let Some(size) = mmap_size {
        set_sqlite_mmap_size(conn, size)?;
    }
    result
}

#[derive(QueryableByName)]
struct MmapSize {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    mmap_size: i64,
}

/// Reads the memory-map limit of a SQLite connection, in bytes; `None` on PostgreSQL.
fn sqlite_mmap_size(conn: &mut DbConnection) -> Result<Option<i64>, ExportError> {
    let DbConnection::Sqlite(sqlite) = conn else {
        return Ok(None);
    };
    let rows: Vec<MmapSize> = diesel::sql_query("PRAGMA mmap_size").load(sqlite)?;
    Ok(rows.first().map(|row| row.mmap_size))
}

fn set_sqlite_mmap_size(conn: &mut DbConnection, bytes: i64) -> Result<(), ExportError> {
    if let DbConnection::Sqlite(sqlite) = conn {
        diesel::sql_query(format!("PRAGMA mmap_size = {bytes}")).execute(sqlite)?;
    }
    Ok(())
}

/// Writes every file inside one read-only transaction.
fn export_snapshot(
    conn: &mut DbConnection,
    project: ProjectRow,
    options: &ExportOptions,
    sink: &mut dyn ExportSink,
) -> Result<ExportSummary, ExportError> {
    conn.transaction::<_, ExportError, _>(|conn| {
        if let DbConnection::Postgres(pg) = conn {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(pg)?;
        }
        let ctx = StudyContext::load(conn, project, options.real_names)?;
        let mut files = Vec::new();

        let scan = reference::scan_items(conn, ctx.project.id)?;
        let mut ratings = RatingCollector::new(&ctx, scan.item_ids);
        let grade_rows = write_hashed(sink, "grades.csv", &mut files, |out| {
            grades::write_grades(conn, &ctx, out, &mut ratings)
        })?;
        let keys = &scan.metadata_keys;
        let tally = write_hashed(sink, "reference.csv", &mut files, |out| {
            reference::write_reference(conn, &ctx, keys, &ratings, out)
        })?;
        if pseudolabels::has_proposals(conn, ctx.project.id)? {
            write_hashed(sink, "pseudolabels.csv", &mut files, |out| {
                pseudolabels::write_pseudolabels(conn, ctx.project.id, out)
            })?;
        }

        // The agreement report needs no database, so a second thread computes it while
        // provenance.json's data is written. Its files are small, so they wait in memory
        // until provenance.json, which lists their hashes at its end, is finished.
        let written = files.clone();
        let agreement_files = std::thread::scope(|scope| -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
            let report = scope.spawn(|| agreement::render(&ctx, &tally, ratings));
            let mut rendered = None;
            write_hashed(sink, "provenance.json", &mut files, |out| {
                provenance::write_provenance(conn, &ctx, &tally, out, || {
                    let agreement = report.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                    let mut listed = written;
                    for (name, bytes) in &agreement {
                        listed.push(ExportedFile {
                            name: name.to_string(),
                            sha256: hex::encode(Sha256::digest(bytes)),
                            bytes: bytes.len() as u64,
                        });
                    }
                    rendered = Some(agreement);
                    Ok(ExportStamp {
                        exported_at: options.exported_at,
                        files: listed,
                    })
                })
            })?;
            rendered.ok_or_else(|| {
                ExportError::Io(std::io::Error::other(
                    "provenance.json was written without the agreement report",
                ))
            })
        })?;
        for (name, bytes) in agreement_files {
            write_hashed(sink, name, &mut files, |out| Ok(out.write_all(&bytes)?))?;
        }
        Ok(ExportSummary {
            files,
            items: tally.items,
            grade_rows,
        })
    })
}

/// Writes one file through a buffer and records its SHA-256 and size in `files`.
fn write_hashed<T>(
    sink: &mut dyn ExportSink,
    name: &str,
    files: &mut Vec<ExportedFile>,
    body: impl FnOnce(&mut dyn Write) -> Result<T, ExportError>,
) -> Result<T, ExportError> {
    let mut body = Some(body);
    let mut result = None;
    let mut digest = None;
    sink.write_file(name, &mut |raw: &mut dyn Write| {
        let body = body.take().expect("a sink runs each file body once");
        let mut hashing = HashingWriter::new(raw);
        {
            let mut buffered = BufWriter::with_capacity(1 << 16, &mut hashing);
            result = Some(body(&mut buffered)?);
            buffered.flush()?;
        }
        digest = Some(hashing.finish());
        Ok(())
    })?;
    let (Some(result), Some((sha256, bytes))) = (result, digest) else {
        return Err(ExportError::Io(std::io::Error::other(format!(
            "the sink did not write {name}"
        ))));
    };
    files.push(ExportedFile {
        name: name.to_string(),
        sha256,
        bytes,
    });
    Ok(result)
}

/// Writes the files into a folder. Each file is written under a temporary name and renamed
/// by [`DirSink::commit`], so a failed export leaves the folder's earlier files as they were.
pub struct DirSink {
    dir: PathBuf,
    pending: Vec<(PathBuf, PathBuf)>,
}

impl DirSink {
    /// Creates the folder if needed.
    pub fn new(dir: &Path) -> std::io::Result<DirSink> {
        std::fs::create_dir_all(dir)?;
        Ok(DirSink {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// Gives every written file its final name and returns the paths.
    pub fn commit(mut self) -> std::io::Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for (temporary, target) in std::mem::take(&mut self.pending) {
            std::fs::rename(&temporary, &target)?;
            done.push(target);
        }
        Ok(done)
    }
}

impl ExportSink for DirSink {
    fn write_file(&mut self, name: &str, body: &mut FileBody<'_>) -> Result<(), ExportError> {
        let target = self.dir.join(name);
        let temporary = self.dir.join(format!(".{name}.partial"));
        let mut file = std::fs::File::create(&temporary)?;
        self.pending.push((temporary, target));
        body(&mut file)?;
        file.sync_all()?;
        Ok(())
    }
}

impl Drop for DirSink {
    fn drop(&mut self) {
        for (temporary, _) in &self.pending {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Writes the files into a zip archive, deflated, inside one folder.
pub struct ZipSink<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    options: zip::write::SimpleFileOptions,
    folder: String,
}

impl<W: Write + Seek> ZipSink<W> {
    /// Starts an archive whose entries lie in `folder/` and carry `modified_at` (epoch ms,
    /// UTC) as their time.
    pub fn new(inner: W, folder: &str, modified_at: i64) -> ZipSink<W> {
        let mut options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            // Entries are streamed without knowing their size, and provenance.json of a
            // large study can pass 4 GiB.
            .large_file(true);
        if let Some(time) = zip_time(modified_at) {
            options = options.last_modified_time(time);
        }
        ZipSink {
            zip: zip::ZipWriter::new(inner),
            options,
            folder: folder.to_string(),
        }
    }

    /// Writes the archive's central directory and returns the inner writer.
    pub fn finish(self) -> Result<W, ExportError> {
        Ok(self.zip.finish()?)
    }
}

impl<W: Write + Seek> ExportSink for ZipSink<W> {
    fn write_file(&mut self, name: &str, body: &mut FileBody<'_>) -> Result<(), ExportError> {
        self.zip.start_file(format!("{}/{name}", self.folder), self.options)?;
        body(&mut self.zip)
    }
}

/// Converts epoch milliseconds to a zip entry time. The format has local time and even
/// seconds only, so the time is written as UTC, rounded down to an even second.
fn zip_time(epoch_ms: i64) -> Option<zip::DateTime> {
    let moment = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000)).ok()?;
    let year = u16::try_from(moment.year()).ok()?;
    let second = moment.second() - moment.second() % 2;
    zip::DateTime::from_date_and_time(
        year,
        moment.month().into(),
        moment.day(),
        moment.hour(),
        moment.minute(),
        second,
    )
    .ok()
}
