//! `quorum import images`: bring a folder or a zip of photographs into a study.
//!
//! Each file is checked and processed in memory first ([`super::process`]); only an image
//! that passed is written to the data folder and inserted as an item. A file that fails
//! (truncated, not an image, too large, an unsafe zip entry name, a duplicate) is reported
//! with its name and reason and leaves no row and no file behind, while the rest import.
//!
//! Metadata comes from an optional CSV with one row per image: an image-name column (`image`,
//! `image_name`, `name` or `file`) and any others (patient pseudonym, eye, age band, sex,
//! camera, site), stored as the item's JSON metadata.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path};

use anyhow::Context;

use super::storage::{paths_for, write_if_absent, WrittenFiles};
use super::{format_extension, process, ImageLimits};
use crate::config::Settings;
use crate::domain::roles::ItemStatus;
use crate::store::audit::{self, AuditEntry};
use crate::store::models::{NewItem, ProjectRow};
use crate::store::{items, now_ms, Database};

/// File name extensions treated as images; other files in a folder are listed as skipped.
const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "tif", "tiff"];

/// The outcome of one import.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Names and item ids of the images imported.
    pub imported: Vec<(String, i64)>,
    /// Names of images rejected, with the reason.
    pub failed: Vec<(String, String)>,
    /// Files passed over because they are not images by name (a README, a CSV).
    pub skipped: Vec<String>,
    /// Metadata rows that name no imported image.
    pub unmatched_metadata: Vec<String>,
}

/// One candidate file: its name within the source, and its bytes or the reason it was
/// rejected before reading.
struct Candidate {
    name: String,
    bytes: Result<Vec<u8>, String>,
}

/// Imports every image under `source` (a folder, searched recursively, or a `.zip`) into
/// `project`. Zip files found in a folder are imported as well.
///
/// Fails only when the source or the metadata file cannot be read at all; problems with
/// single files are listed in the report.
pub fn import_images(
    db: &Database,
    settings: &Settings,
    project: &ProjectRow,
    source: &Path,
    metadata_csv: Option<&Path>,
    limits: ImageLimits,
    actor_id: Option<i64>,
) -> anyhow::Result<ImportReport> {
    let metadata = match metadata_csv {
        Some(path) => read_metadata(path)?,
        None => BTreeMap::new(),
    };
    let mut report = ImportReport::default();
    let candidates = if source.is_dir() {
        folder_candidates(source, limits, &mut report)?
    } else if has_extension(&source.to_string_lossy(), "zip") {
        zip_candidates(source, limits, &mut report)?
    } else {
        anyhow::bail!("{} is neither a folder nor a .zip file", source.display());
    };

    import_candidates(db, settings, project, candidates, &metadata, limits, actor_id, &mut report);
    Ok(report)
}

/// Imports images held in memory, as `(name, bytes)`, with metadata keyed by image name.
/// Used by the demo, whose photographs are embedded in the binary.
pub fn import_in_memory(
    db: &Database,
    settings: &Settings,
    project: &ProjectRow,
    files: Vec<(String, Vec<u8>)>,
    metadata: &BTreeMap<String, BTreeMap<String, String>>,
    actor_id: Option<i64>,
) -> ImportReport {
    let mut report = ImportReport::default();
    let candidates = files.into_iter().map(|(name, bytes)| Candidate { name, bytes: Ok(bytes) }).collect();
    import_candidates(db, settings, project, candidates, metadata, ImageLimits::default(), actor_id, &mut report);
    report
}

#[allow(clippy::too_many_arguments)]
fn import_candidates(
    db: &Database,
    settings: &Settings,
    project: &ProjectRow,
    candidates: Vec<Candidate>,
    metadata: &BTreeMap<String, BTreeMap<String, String>>,
    limits: ImageLimits,
    actor_id: Option<i64>,
    report: &mut ImportReport,
) {
    let mut matched_metadata = std::collections::BTreeSet::new();
    for candidate in candidates {
        let bytes = match candidate.bytes {
            Ok(bytes) => bytes,
            Err(reason) => {
                report.failed.push((candidate.name, reason));
                continue;
            }
        };
        let base_name = candidate.name.rsplit('/').next().unwrap_or(&candidate.name).to_string();
        let item_metadata = metadata
            .get(&candidate.name)
            .map(|row| (candidate.name.clone(), row))
            .or_else(|| metadata.get(&base_name).map(|row| (base_name.clone(), row)));
        let metadata_json = match &item_metadata {
            Some((key, row)) => {
                matched_metadata.insert(key.clone());
                serde_json::to_string(row).unwrap_or_else(|_| "{}".to_string())
            }
            None => "{}".to_string(),
        };
        match import_one(db, settings, project, &candidate.name, &bytes, &metadata_json, limits, actor_id) {
            Ok(item_id) => report.imported.push((candidate.name, item_id)),
            Err(reason) => report.failed.push((candidate.name, reason)),
        }
    }
    report.unmatched_metadata = metadata.keys().filter(|k| !matched_metadata.contains(*k)).cloned().collect();
    tracing::info!(
        project = %project.slug,
        imported = report.imported.len(),
        failed = report.failed.len(),
        "image import finished"
    );
}

/// Processes, stores and inserts one image; returns the item id or the reason it failed.
#[allow(clippy::too_many_arguments)]
fn import_one(
    db: &Database,
    settings: &Settings,
    project: &ProjectRow,
    name: &str,
    bytes: &[u8],
    metadata_json: &str,
    limits: ImageLimits,
    actor_id: Option<i64>,
) -> Result<i64, String> {
    let processed = process(bytes, limits).map_err(|e| e.to_string())?;
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    if items::find_by_name(&mut conn, project.id, name).map_err(|e| e.to_string())?.is_some() {
        return Err(format!("an item named {name:?} already exists in this study"));
    }
    if let Some(existing) = items::find_by_sha256(&mut conn, project.id, &processed.sha256).map_err(|e| e.to_string())? {
        return Err(format!("same content as item {:?} already in this study", existing.name));
    }

    let extension = format_extension(processed.format);
    let paths = paths_for(&processed.sha256, extension);
    let mut written = WrittenFiles::default();
    let write_result = write_if_absent(settings.data_dir(), &paths.original, bytes, &mut written)
        .and_then(|_| write_if_absent(settings.data_dir(), &paths.display, &processed.display_jpeg, &mut written))
        .and_then(|_| write_if_absent(settings.data_dir(), &paths.thumbnail, &processed.thumbnail_jpeg, &mut written));
    if let Err(error) = write_result {
        written.remove_all();
        return Err(format!("could not write the image files: {error}"));
    }

    let stored_path = paths.original.to_string_lossy().replace('\\', "/");
    let row = NewItem {
        project_id: project.id,
        name,
        sha256: &processed.sha256,
        stored_path: &stored_path,
        byte_size: bytes.len() as i64,
        format: extension,
        width: processed.width as i32,
        height: processed.height as i32,
        metadata: metadata_json,
        status: ItemStatus::Pending.as_str(),
        round: 0,
        priority: 0.0,
        created_at: now_ms(),
    };
    let inserted = conn.transaction::<_, crate::store::StoreError, _>(|conn| {
        let item = items::insert_item(conn, &row)?;
        audit::record(conn, AuditEntry {
            project_id: Some(project.id),
            actor_id,
            action: "item.imported",
            object_type: "item",
            object_id: Some(item.id),
            details: serde_json::json!({ "name": name, "sha256": processed.sha256 }),
        })?;
        Ok(item)
    });
    match inserted {
        Ok(item) => Ok(item.id),
        Err(error) => {
            written.remove_all();
            Err(format!("could not store the item: {error}"))
        }
    }
}

use diesel::Connection;

fn has_extension(name: &str, extension: &str) -> bool {
    Path::new(name).extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

fn is_image_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|known| e.eq_ignore_ascii_case(known)))
}

/// Every image file under a folder, recursively, in name order.
fn folder_candidates(root: &Path, limits: ImageLimits, report: &mut ImportReport) -> anyhow::Result<Vec<Candidate>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading folder {}", dir.display()))? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();

    let mut candidates = Vec::new();
    for path in files {
        let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if has_extension(&name, "zip") {
            // A zip inside the folder is imported too; its entries are named `archive.zip/entry`.
            let mut entries = zip_candidates(&path, limits, report)?;
            for entry in &mut entries {
                entry.name = format!("{name}/{}", entry.name);
            }
            candidates.extend(entries);
            continue;
        }
        if !is_image_name(&name) {
            report.skipped.push(name);
            continue;
        }
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let bytes = if size > limits.max_file_bytes {
            Err(format!("file is {size} bytes, above the limit of {} bytes", limits.max_file_bytes))
        } else {
            fs::read(&path).map_err(|e| format!("could not read the file: {e}"))
        };
        candidates.push(Candidate { name, bytes });
    }
    Ok(candidates)
}

/// Every image entry of a zip, in archive order. Entries whose names climb out of the archive
/// (`..`) or are absolute are rejected without being read.
fn zip_candidates(path: &Path, limits: ImageLimits, report: &mut ImportReport) -> anyhow::Result<Vec<Candidate>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("reading zip archive {}", path.display()))?;
    let mut candidates = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).with_context(|| format!("reading entry {index} of {}", path.display()))?;
        if entry.is_dir() {
            continue;
        }
        let raw_name = entry.name().to_string();
        let unsafe_path = raw_name.starts_with('/')
            || raw_name.starts_with('\\')
            || Path::new(&raw_name).components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)))
            || entry.enclosed_name().is_none();
        if unsafe_path {
            candidates.push(Candidate {
                name: raw_name,
                bytes: Err("unsafe path in zip entry (absolute or containing '..'); rename the entry".into()),
            });
            continue;
        }
        if !is_image_name(&raw_name) {
            report.skipped.push(raw_name);
            continue;
        }
        let size = entry.size();
        if size > limits.max_file_bytes {
            candidates.push(Candidate {
                name: raw_name,
                bytes: Err(format!("file is {size} bytes, above the limit of {} bytes", limits.max_file_bytes)),
            });
            continue;
        }
        // The declared size may lie: read at most one byte past the limit.
        let mut bytes = Vec::with_capacity(size as usize);
        let read = (&mut entry).take(limits.max_file_bytes + 1).read_to_end(&mut bytes);
        let bytes = match read {
            Ok(_) if bytes.len() as u64 > limits.max_file_bytes => {
                Err(format!("file is above the limit of {} bytes", limits.max_file_bytes))
            }
            Ok(_) => Ok(bytes),
            Err(error) => Err(format!("could not read the zip entry: {error}")),
        };
        candidates.push(Candidate { name: raw_name, bytes });
    }
    Ok(candidates)
}

/// Reads the metadata CSV into image name -> (column -> value), skipping empty cells.
pub fn read_metadata(path: &Path) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let raw = fs::read(path).with_context(|| format!("reading metadata file {}", path.display()))?;
    parse_metadata(&raw, &path.display().to_string())
}

/// Parses metadata CSV bytes; `source` names the file in error messages.
pub fn parse_metadata(raw: &[u8], source: &str) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let text = crate::csvio::decode_utf8(raw).with_context(|| format!("metadata file {source}"))?;
    let delimiter = crate::csvio::detect_delimiter(text);
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
    let name_column = headers
        .iter()
        .position(|h| ["image", "image_name", "name", "file"].contains(&h.to_ascii_lowercase().as_str()))
        .ok_or_else(|| anyhow::anyhow!(
            "metadata file {} has no image-name column: name one column `image` (found: {})",
            source,
            headers.join(", ")
        ))?;

    let mut rows = BTreeMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.with_context(|| format!("metadata file {} line {line}", source))?;
        let name = record.get(name_column).unwrap_or("").trim().to_string();
        if name.is_empty() {
            anyhow::bail!("metadata file {} line {line}: the image name is empty", source);
        }
        let mut values = BTreeMap::new();
        for (column, value) in headers.iter().zip(record.iter()) {
            if column != &headers[name_column] && !value.trim().is_empty() {
                values.insert(column.clone(), value.trim().to_string());
            }
        }
        if rows.insert(name.clone(), values).is_some() {
            anyhow::bail!("metadata file {} line {line}: image {name:?} appears twice", source);
        }
    }
    Ok(rows)
}
