//! The demo study on both backends, used the way a new user would: log in, list studies.

mod common;

use common::{TestApp, TestBackend, TestDatabase};

/// Reads `role username password` lines of the credentials file.
fn demo_credentials(app: &TestApp) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(app.settings.data_dir().join("demo-credentials.txt")).expect("credentials file");
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "line {line:?} is not `role username password`");
            (parts[0].to_string(), parts[1].to_string(), parts[2].to_string())
        })
        .collect()
}

fn demo_serves_study(backend: TestBackend) {
    let database = TestDatabase::new(backend);
    let settings = database.settings();
    let db = database.open();
    let summary = quorum::demo::set_up(&db, &settings).expect("demo set-up");
    assert_eq!(summary.item_count, 56);
    assert!(summary.import_failures.is_empty(), "{:?}", summary.import_failures);
    assert_eq!(summary.new_credentials.len(), 5);
    drop(db);

    let app = TestApp::spawn_on(database);
    let health = app.client.get(app.url("/healthz")).send().expect("healthz");
    assert_eq!(health.status(), 200);

    let credentials = demo_credentials(&app);
    let roles: Vec<&str> = credentials.iter().map(|(role, _, _)| role.as_str()).collect();
    assert_eq!(roles, ["lead", "senior", "grader", "grader", "grader"]);
    let (_, lead, password) = &credentials[0];
    let token = app.login(lead, password);

    let response = app.get("/api/v1/projects", &token);
    assert_eq!(response.status(), 200);
    let studies: serde_json::Value = response.json().expect("json");
    let studies = studies.as_array().expect("array of studies");
    assert_eq!(studies.len(), 1);
    assert_eq!(studies[0]["slug"], "demo");
    assert_eq!(studies[0]["item_count"], 56);
    assert!(studies[0]["name"].as_str().is_some_and(|n| !n.is_empty()));

    let project = app.get("/api/v1/projects/demo", &token);
    assert_eq!(project.status(), 200);
    let project: serde_json::Value = project.json().expect("json");
    assert_eq!(project["items_by_status"]["pending"], 56);
    assert_eq!(project["overlap"], 3);
    assert_eq!(project["guideline"]["key"], "dr-screening");
}

#[test]
fn sqlite_demo_serves_study() {
    demo_serves_study(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_demo_serves_study() {
    demo_serves_study(TestBackend::Postgres);
}

#[test]
fn demo_set_up_twice_reuses_everything() {
    let database = TestDatabase::new(TestBackend::Sqlite);
    let settings = database.settings();
    let db = database.open();
    quorum::demo::set_up(&db, &settings).expect("first set-up");
    let second = quorum::demo::set_up(&db, &settings).expect("second set-up");
    assert!(second.new_credentials.is_empty());
    assert_eq!(second.item_count, 56);
    let lines = std::fs::read_to_string(settings.data_dir().join("demo-credentials.txt")).expect("file");
    assert_eq!(lines.lines().count(), 5);
    let mut conn = db.conn().expect("connection");
    assert_eq!(quorum::store::users::count(&mut conn).expect("count"), 5);
}

#[test]
fn demo_credentials_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::new(TestBackend::Sqlite);
    let settings = database.settings();
    let db = database.open();
    quorum::demo::set_up(&db, &settings).expect("set-up");
    let mode = std::fs::metadata(settings.data_dir().join("demo-credentials.txt")).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn study_pages_render_for_member() {
    let database = TestDatabase::new(TestBackend::Sqlite);
    let settings = database.settings();
    quorum::demo::set_up(&database.open(), &settings).expect("set-up");
    let app = TestApp::spawn_on(database);
    let credentials = demo_credentials(&app);
    let (_, grader, password) = &credentials[2];

    let login = app
        .client
        .post(app.url("/login"))
        .form(&[("username", grader.as_str()), ("password", password.as_str())])
        .send()
        .expect("login form");
    assert_eq!(login.status(), 303);
    let cookie = login.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie").to_string();
    let session = cookie.split(';').next().expect("cookie pair").to_string();

    let studies = app.client.get(app.url("/studies")).header("cookie", &session).send().expect("studies");
    assert_eq!(studies.status(), 200);
    let html = studies.text().expect("html");
    assert!(html.contains("/studies/demo"), "studies page lacks the demo study");

    let dashboard = app.client.get(app.url("/studies/demo")).header("cookie", &session).send().expect("dashboard");
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().expect("html");
    assert!(html.contains("/studies/demo/grade"), "the grader has no link to the grading page");
    assert!(!html.contains("data-status="), "a grader must not see the workflow counts");
    assert!(!html.contains("Members"), "a grader must not see the member list");

    let (_, lead, lead_password) = &credentials[0];
    let login = app
        .client
        .post(app.url("/login"))
        .form(&[("username", lead.as_str()), ("password", lead_password.as_str())])
        .send()
        .expect("login form");
    let cookie = login.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie").to_string();
    let session = cookie.split(';').next().expect("cookie pair").to_string();
    let dashboard = app.client.get(app.url("/studies/demo")).header("cookie", &session).send().expect("dashboard");
    let html = dashboard.text().expect("html");
    assert!(html.contains("data-status=\"pending\"><td>pending</td><td class=\"num\">56</td>"), "{html}");
    assert!(html.contains("Members"), "a lead sees the member list");
}

#[test]
fn login_page_rejects_wrong_password() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    app.create_user("bob", "the right password", false);
    let response = app
        .client
        .post(app.url("/login"))
        .form(&[("username", "bob"), ("password", "the wrong password")])
        .send()
        .expect("login form");
    assert_eq!(response.status(), 401);
    assert!(response.text().expect("html").contains("invalid username or password"));
}
