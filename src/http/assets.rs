//! Static files (CSS, JavaScript modules, the viewer) embedded in the binary at build time.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "frontend/static/"]
struct StaticFiles;

pub async fn serve(path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    match StaticFiles::get(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, mime.as_ref()))
                .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                .body(file.data.into_owned())
        }
        None => HttpResponse::NotFound().body(format!("no static file {path:?}")),
    }
}
