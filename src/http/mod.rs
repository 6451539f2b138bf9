//! The web server: JSON API under `/api/v1`, server-rendered pages, embedded static assets.
//!
//! Handlers parse the request, call one store or domain function (on actix's blocking pool,
//! since diesel is synchronous) and map the result to a response. Business rules live in
//! `domain/`; access checks are written once in [`access`].

pub mod access;
pub mod active_learning;
pub mod admin;
pub mod aggregate;
pub mod agreement;
pub mod api;
pub mod assets;
pub mod auth;
pub mod error;
pub mod export;
pub mod grading;
pub mod live;
pub mod pages;
pub mod pages_workflow;
pub mod projects;
pub mod workflow;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::TokenKeys;
use crate::config::Settings;
use crate::store::Database;

/// What every handler can reach.
pub struct AppState {
    pub db: Database,
    pub settings: Settings,
    pub keys: TokenKeys,
    pub events: std::sync::Arc<crate::events::EventHub>,
}

/// Largest JSON body accepted, in bytes.
const JSON_LIMIT_BYTES: usize = 1024 * 1024;

/// Registers every route; shared by the server and tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(JSON_LIMIT_BYTES).error_handler(error::json_error_handler))
        .app_data(web::FormConfig::default().limit(64 * 1024))
        .route("/healthz", web::get().to(api::healthz))
        .service(
            web::scope("/api/v1")
                // The router tries patterns in order, one regular expression each, so the two
                // routes graders call all day come first.
                .route("/projects/{slug}/next", web::get().to(grading::next))
                .route("/projects/{slug}/items/{item_id}/grades", web::post().to(grading::submit))
                .route("/auth/login", web::post().to(api::login))
                .route("/auth/logout", web::post().to(api::logout))
                .route("/me", web::get().to(api::me))
                .route("/users", web::post().to(admin::create_user))
                .route("/projects", web::get().to(api::list_projects))
                .route("/projects", web::post().to(projects::create))
                .route("/projects/{slug}", web::get().to(api::get_project))
                .route("/projects/{slug}", web::patch().to(projects::update))
                .route("/projects/{slug}/members", web::post().to(projects::add_member))
                .service(
                    web::resource("/projects/{slug}/items")
                        .app_data(web::PayloadConfig::new(admin::MAX_UPLOAD_BYTES))
                        .route(web::post().to(admin::upload_item)),
                )
                .route("/projects/{slug}/events", web::get().to(live::study_events))
                .route("/projects/{slug}/items/{item_id}/room", web::get().to(live::item_room))
                .route("/projects/{slug}/progress", web::get().to(grading::progress))
                .route("/projects/{slug}/export.zip", web::get().to(export::export_zip))
                .route("/projects/{slug}/agreement", web::get().to(agreement::api_agreement))
                .route("/projects/{slug}/scorecard", web::get().to(agreement::api_scorecard))
                .route("/projects/{slug}/aggregate", web::get().to(aggregate::api_aggregate))
                .route("/projects/{slug}/model-runs", web::post().to(active_learning::start))
                .route("/projects/{slug}/model-runs", web::get().to(active_learning::list))
                .route("/projects/{slug}/model-runs/{run_id}", web::get().to(active_learning::detail))
                .route("/projects/{slug}/model-runs/{run_id}/accept", web::post().to(active_learning::accept))
                .route("/projects/{slug}/items/{item_id}/my-grade", web::get().to(grading::my_grade))
                .route("/projects/{slug}/arbitration", web::get().to(workflow::arbitration_queue))
                .route("/projects/{slug}/adjudications", web::get().to(workflow::adjudications))
                .route("/projects/{slug}/adjudications/mine", web::get().to(workflow::my_adjudications))
                .route("/projects/{slug}/items/{item_id}/review", web::get().to(workflow::review::review))
                .route("/projects/{slug}/items/{item_id}/arbitration", web::post().to(workflow::arbitrate))
                .route("/projects/{slug}/items/{item_id}/messages", web::get().to(workflow::review::list_messages))
                .route("/projects/{slug}/items/{item_id}/messages", web::post().to(workflow::review::post_message))
                .route("/projects/{slug}/items/{item_id}/exclude", web::post().to(workflow::exclude))
                .route("/projects/{slug}/items/{item_id}/reopen", web::post().to(workflow::reopen))
                .route("/projects/{slug}/items/{item_id}/image/{variant}", web::get().to(api::item_image)),
        )
        .route("/static/{path:.*}", web::get().to(assets::serve))
        .route("/", web::get().to(pages::index))
        .route("/login", web::get().to(pages::login_form))
        .route("/login", web::post().to(pages::login_submit))
        .route("/logout", web::post().to(pages::logout))
        .route("/studies", web::get().to(pages::studies))
        .route("/studies/{slug}", web::get().to(pages::dashboard))
        .route("/studies/{slug}/grade", web::get().to(pages::grade))
        .route("/studies/{slug}/adjudications", web::get().to(pages_workflow::queues))
        .route("/studies/{slug}/adjudicate/{item_id}", web::get().to(pages_workflow::adjudicate))
        .route("/studies/{slug}/agreement", web::get().to(agreement::agreement_page_handler))
        .route("/studies/{slug}/scorecard", web::get().to(agreement::scorecard_page))
        .route("/studies/{slug}/active-learning", web::get().to(active_learning::page::active_learning_page));
}

/// Starts the server on an already bound listener (tests bind port 0).
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .wrap(actix_web::middleware::Compress::default())
            .app_data(state.clone())
            .configure(configure)
    })
    .listen(listener)?
    .run();
    Ok(server)
}
