//! `GET /api/v1/projects/{slug}/export.zip[?real_names=true]`: the study's export (see
//! [`crate::export`]) as one zip archive, for the study's leads and admins.
//!
//! The archive is written to an unnamed temporary file in the data folder and streamed from
//! there, so memory use does not grow with the study.

use std::io::{Read, Seek, SeekFrom};

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::roles::Role;
use crate::export::{export_study, ExportOptions, ZipSink};
use crate::store::now_ms;

/// Bytes read from the temporary file per chunk of the response.
const CHUNK_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Name graders by username instead of by pseudonym.
    #[serde(default)]
    pub real_names: bool,
}

/// Creates a temporary file in `dir` and removes its name at once; the open handle keeps
/// the data until it is dropped.
///
/// NOTE: removing an open file's name works on Unix; where it fails, the file stays in the
/// folder and is named in a warning.
fn anonymous_file(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("export-{}-{:016x}.zip", now_ms(), rand::random::<u64>()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), %error, "could not remove the temporary export file");
    }
    Ok(file)
}

/// `GET /api/v1/projects/{slug}/export.zip`: leads of the study and admins; others get 403.
pub async fn export_zip(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let temporary_dir = state.settings.data_dir().join("tmp");
    let real_names = query.real_names;
    let (file, length, slug) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if role != Some(Role::Lead) && !user.is_admin {
            return Err(AppError::Forbidden(format!("only a lead of study {slug:?} or an admin can export it")));
        }
        let slug = project.slug.clone();
        let file = anonymous_file(&temporary_dir).map_err(AppError::internal)?;
        let exported_at = now_ms();
        let mut sink = ZipSink::new(file, &format!("{slug}-export"), exported_at);
        let options = ExportOptions { real_names, exported_at };
        let summary = export_study(&mut conn, project, &options, &mut sink).map_err(AppError::internal)?;
        let mut file = sink.finish().map_err(AppError::internal)?;
        let length = file.stream_position().map_err(AppError::internal)?;
        file.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
        tracing::info!(study = %slug, user = %user.username, items = summary.items, grades = summary.grade_rows, bytes = length, "study exported");
        Ok((file, length, slug))
    })
    .await??;

    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        let (file, chunk) = web::block(move || -> std::io::Result<_> {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let read = file.read(&mut chunk)?;
            chunk.truncate(read);
            Ok((file, chunk))
        })
        .await
        .map_err(std::io::Error::other)??;
        if chunk.is_empty() {
            return Ok::<_, std::io::Error>(None);
        }
        Ok(Some((web::Bytes::from(chunk), file)))
    });
    // Zip entries are deflated already; naming the encoding keeps the compression
    // middleware from compressing the archive again.
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(header::ContentEncoding::Identity)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{slug}-export.zip\""),
        ))
        .body(SizedStream::new(length, chunks)))
}
