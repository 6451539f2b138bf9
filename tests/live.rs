//! Live events over WebSocket: the study stream, access checks, and events crossing server
//! processes through PostgreSQL LISTEN/NOTIFY.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{answers_for, TestApp, TestBackend};
use serde_json::json;
use tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "live events password";

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn connect(base_url: &str, path: &str, token: &str) -> Result<Socket, tungstenite::Error> {
    let url = format!("{}{path}", base_url.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    let (mut socket, _) = tungstenite::connect(request)?;
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    }
    Ok(socket)
}

/// Reads events until one satisfies `accept`; fails after the socket's read timeout.
fn wait_for(socket: &mut Socket, accept: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    loop {
        let message = socket.read().expect("an event before the timeout");
        if let tungstenite::Message::Text(text) = message {
            let event: serde_json::Value = serde_json::from_str(&text).expect("event is JSON");
            if accept(&event) {
                return event;
            }
        }
    }
}

fn grade_item_by_all(app: &TestApp, graders: &[String]) -> i64 {
    let mut item_id = 0;
    for token in graders {
        let item: serde_json::Value = app.get("/api/v1/projects/study/next", token).json().expect("json");
        item_id = item["item_id"].as_i64().expect("id");
        let response = app.post_json(
            &format!("/api/v1/projects/study/items/{item_id}/grades"),
            token,
            &json!({ "answers": answers_for(3), "comment": "", "time_spent_ms": 5 }),
        );
        assert_eq!(response.status(), 201);
    }
    item_id
}

fn setup(app: &TestApp) -> (String, Vec<String>) {
    let lead_id = app.create_user("lead", PASSWORD, false);
    let study = app.create_study("study", 2, 3, "majority-vote", lead_id);
    let mut graders = Vec::new();
    for i in 0..3 {
        let name = format!("grader{i}");
        let id = app.create_user(&name, PASSWORD, false);
        app.add_member(&study, id, "grader");
        graders.push(app.login(&name, PASSWORD));
    }
    (app.login("lead", PASSWORD), graders)
}

#[test]
fn lead_sees_item_resolve_live() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let (lead, graders) = setup(&app);
    let mut socket = connect(&app.base_url, "/api/v1/projects/study/events", &lead).expect("connect");
    let hello = wait_for(&mut socket, |e| e["type"] == "hello");
    assert_eq!(hello["resync"], false);

    let item_id = grade_item_by_all(&app, &graders);
    let event = wait_for(&mut socket, |e| e["type"] == "item" && e["status"] == "resolved");
    assert_eq!(event["item_id"], item_id);
    assert!(event["seq"].as_u64().is_some_and(|seq| seq >= 1));
}

#[test]
fn reconnect_gets_missed_events() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let (lead, graders) = setup(&app);
    let mut socket = connect(&app.base_url, "/api/v1/projects/study/events", &lead).expect("connect");
    wait_for(&mut socket, |e| e["type"] == "hello");
    drop(socket);

    grade_item_by_all(&app, &graders);
    let mut socket = connect(&app.base_url, "/api/v1/projects/study/events?since=0", &lead).expect("reconnect");
    wait_for(&mut socket, |e| e["type"] == "hello");
    let missed = wait_for(&mut socket, |e| e["type"] == "item" && e["status"] == "resolved");
    assert!(missed["seq"].as_u64().is_some());
}

#[test]
fn grader_cannot_open_study_stream() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let (_, graders) = setup(&app);
    let error = connect(&app.base_url, "/api/v1/projects/study/events", &graders[0]).err().expect("refused");
    match error {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected an HTTP 403, got {other}"),
    }
}

#[test]
fn grader_cannot_join_room_of_item_in_grading() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let (_, graders) = setup(&app);
    let item: serde_json::Value = app.get("/api/v1/projects/study/next", &graders[0]).json().expect("json");
    let item_id = item["item_id"].as_i64().expect("id");
    let error = connect(&app.base_url, &format!("/api/v1/projects/study/items/{item_id}/room"), &graders[0]).err().expect("refused");
    match error {
        tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected an HTTP 403, got {other}"),
    }
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_events_cross_server_processes() {
    let app = TestApp::spawn(TestBackend::Postgres);
    let (lead, graders) = setup(&app);

    // A second server on the same database, with its own event hub, as a second process has.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_url = format!("http://{}", listener.local_addr().expect("address"));
    let settings = app.settings.clone();
    let database_url = app.database.url.clone();
    std::thread::spawn(move || {
        let db = quorum::store::Database::open(&database_url, 4).expect("open");
        let keys = quorum::auth::TokenKeys::load_or_create(&settings.jwt_key_path()).expect("keys");
        let events = std::sync::Arc::new(quorum::events::EventHub::default());
        quorum::events::connect_postgres(&events, &db, &database_url);
        let state = quorum::http::AppState { db, settings, keys, events };
        actix_web::rt::System::new().block_on(async move {
            let server = quorum::http::run(listener, state).expect("second server");
            let _ = server.await;
        });
    });

    let mut socket = connect(&other_url, "/api/v1/projects/study/events", &lead).expect("connect to the second server");
    wait_for(&mut socket, |e| e["type"] == "hello");
    // Give the second server's listener time to issue LISTEN.
    std::thread::sleep(Duration::from_millis(500));
    let item_id = grade_item_by_all(&app, &graders);
    let event = wait_for(&mut socket, |e| e["type"] == "item" && e["status"] == "resolved");
    assert_eq!(event["item_id"], item_id);
}
