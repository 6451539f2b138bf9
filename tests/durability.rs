//! Durability: every grade the server acknowledged with 201 is still stored after the server
//! process is killed with SIGKILL in the middle of a grading load and started again.
//!
//! The server runs as a child process (the `quorum` binary of this build), so the kill is a
//! real process death: nothing in the server gets to flush or close anything.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{answers_for, TestBackend, TestDatabase};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "durability admin password";
const GRADER_PASSWORD: &str = "durability grader password";
const SLUG: &str = "durability";
const GRADERS: usize = 6;
const ITEMS: usize = 50;
const OVERLAP: i32 = 3;

/// The kill comes after this much load or after [`KILL_AFTER_GRADES`] acknowledged grades,
/// whichever is first, so that grading is still under way when the server dies (the study
/// takes `ITEMS * OVERLAP` = 150 grades).
const KILL_AFTER: Duration = Duration::from_millis(1500);
const KILL_AFTER_GRADES: usize = 90;

/// How long a starting server may take before `/healthz` returns 200.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `quorum serve` child process; killed when dropped so a failing test leaves no server.
struct Server {
    child: Child,
    base_url: String,
    log_path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds a command for the `quorum` binary with the test's data folder and database.
fn quorum(database: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quorum"));
    command.arg("--data-dir").arg(database.dir.path()).arg("--database-url").arg(&database.url);
    command
}

/// Returns the last 4,000 characters of a server log, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    text[start..].to_string()
}

/// Creates the admin account through the CLI, which reads the password from standard input.
fn create_admin(database: &TestDatabase) {
    let mut child = quorum(database)
        .args(["user", "add", "--username", "admin", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start quorum user add");
    child
        .stdin
        .take()
        .expect("stdin of quorum user add")
        .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("wait for quorum user add");
    assert!(output.status.success(), "quorum user add failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Returns a loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local address").port()
}

/// Starts `quorum serve` on a free loopback port and waits until `/healthz` returns 200.
/// `run` numbers the log file so a restart keeps the first run's log.
fn start_server(database: &TestDatabase, run: usize) -> Server {
    let port = free_port();
    let log_path = database.dir.path().join(format!("server-{run}.log"));
    let log = File::create(&log_path).expect("create the server log");
    let child = quorum(database)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .spawn()
        .expect("start quorum serve");
    let mut server = Server { child, base_url: format!("http://127.0.0.1:{port}"), log_path };

    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build().expect("http client");
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().expect("poll the server process") {
            panic!("quorum serve exited with {status} before /healthz returned 200:\n{}", log_tail(&server.log_path));
        }
        let healthy = client.get(format!("{}/healthz", server.base_url)).send().is_ok_and(|r| r.status() == 200);
        if healthy {
            return server;
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "quorum serve did not answer /healthz within {START_TIMEOUT:?}:\n{}",
            log_tail(&server.log_path)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn login(client: &reqwest::blocking::Client, base_url: &str, username: &str, password: &str) -> String {
    let response = client
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .expect("login request");
    assert_eq!(response.status(), 200, "login of {username} failed");
    let body: Value = response.json().expect("login body");
    body["token"].as_str().expect("token in the login response").to_string()
}

fn post_json(client: &reqwest::blocking::Client, url: &str, token: &str, body: &Value) -> Value {
    let response = client.post(url).bearer_auth(token).json(body).send().expect("POST request");
    let status = response.status();
    let text = response.text().unwrap_or_default();
    assert_eq!(status, 201, "POST {url} failed: {text}");
    serde_json::from_str(&text).expect("JSON response")
}

/// Encodes an 8x8 PNG whose first pixels encode `index`, so every image of the study differs.
fn png_for(index: usize) -> Vec<u8> {
    let index_bytes = (index as u64).to_le_bytes();
    let image = image::RgbImage::from_fn(8, 8, |x, y| {
        let position = (y * 8 + x) as usize;
        let value = |channel: usize| index_bytes.get(position * 3 + channel).copied().unwrap_or((position * 7) as u8);
        image::Rgb([value(0), value(1), value(2)])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).expect("encode PNG");
    bytes.into_inner()
}

/// A grader's account id and session token.
struct GraderAccount {
    id: i64,
    token: String,
}

/// Creates the study, its graders and its images through the API.
fn set_up_study(server: &Server) -> Vec<GraderAccount> {
    let client = reqwest::blocking::Client::new();
    let base = &server.base_url;
    let admin = login(&client, base, "admin", ADMIN_PASSWORD);
    post_json(
        &client,
        &format!("{base}/api/v1/projects"),
        &admin,
        &json!({
            "slug": SLUG, "name": "Durability", "guideline_key": "dr-screening",
            "guideline_version": "1.0", "overlap": OVERLAP, "policy": "majority-vote"
        }),
    );
    let mut graders = Vec::new();
    for index in 0..GRADERS {
        let username = format!("grader{index}");
        let user = post_json(
            &client,
            &format!("{base}/api/v1/users"),
            &admin,
            &json!({ "username": username, "password": GRADER_PASSWORD, "is_admin": false }),
        );
        post_json(&client, &format!("{base}/api/v1/projects/{SLUG}/members"), &admin, &json!({ "username": username, "role": "grader" }));
        let token = login(&client, base, &username, GRADER_PASSWORD);
        graders.push(GraderAccount { id: user["id"].as_i64().expect("user id"), token });
    }
    for index in 0..ITEMS {
        let response = client
            .post(format!("{base}/api/v1/projects/{SLUG}/items?name=item-{index:03}.png"))
            .bearer_auth(&admin)
            .body(png_for(index))
            .send()
            .expect("upload request");
        assert_eq!(response.status(), 201, "upload of image {index} failed: {}", response.text().unwrap_or_default());
    }
    graders
}

/// A grade acknowledged with 201 before the kill.
#[derive(Debug, Clone, Copy)]
struct AckedGrade {
    item_id: i64,
    grade_id: i64,
    grader_id: i64,
}

/// What the grading threads saw until the server died.
#[derive(Default)]
struct LoadRecord {
    acked: Vec<AckedGrade>,
    /// Responses other than 200, 201, 204 and 409, which no request should get while the
    /// server is up.
    unexpected: Vec<String>,
}

/// Runs one grader's loop of next, then grade, until `stop` is set or a request fails
/// because the server is gone.
fn grade_until_stopped(base_url: &str, grader: &GraderAccount, seed: u64, stop: &AtomicBool, record: &Mutex<LoadRecord>) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let next_url = format!("{base_url}/api/v1/projects/{SLUG}/next");
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(response) = client.get(&next_url).bearer_auth(&grader.token).send() else {
            return;
        };
        match response.status().as_u16() {
            200 => {}
            204 => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            other => {
                let text = response.text().unwrap_or_default();
                record.lock().expect("record lock").unexpected.push(format!("next {other}: {text}"));
                continue;
            }
        }
        let Ok(item) = response.json::<Value>() else {
            return;
        };
        let item_id = item["item_id"].as_i64().expect("item_id in the next response");
        round += 1;
        let body = json!({ "answers": answers_for(seed * 1000 + round), "comment": "", "time_spent_ms": 1000 });
        let Ok(response) = client
            .post(format!("{base_url}/api/v1/projects/{SLUG}/items/{item_id}/grades"))
            .bearer_auth(&grader.token)
            .json(&body)
            .send()
        else {
            return;
        };
        let status = response.status().as_u16();
        // The acknowledgement counts only once its body, with the grade id, has arrived.
        let Ok(text) = response.text() else {
            return;
        };
        match status {
            201 => {
                let receipt: Value = serde_json::from_str(&text).expect("grade receipt JSON");
                let grade_id = receipt["grade_id"].as_i64().expect("grade_id in the receipt");
                record.lock().expect("record lock").acked.push(AckedGrade { item_id, grade_id, grader_id: grader.id });
            }
            409 => {}
            other => record.lock().expect("record lock").unexpected.push(format!("submit {other}: {text}")),
        }
    }
}

/// Loads every stored grade as id -> (item id, grader id).
fn stored_grades(url: &str) -> BTreeMap<i64, (i64, i64)> {
    use diesel::prelude::*;
    use quorum::store::schema::grades;
    let mut conn = quorum::store::establish(url).expect("open the database");
    let rows: Vec<(i64, i64, i64)> =
        grades::table.select((grades::id, grades::item_id, grades::grader_id)).load(&mut conn).expect("select grades");
    rows.into_iter().map(|(id, item, grader)| (id, (item, grader))).collect()
}

/// Runs SQLite's `PRAGMA integrity_check` and returns its result: "ok" for an intact file.
fn sqlite_integrity(url: &str) -> String {
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(url).expect("open the SQLite file");
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check").load(&mut conn).expect("integrity check");
    rows.into_iter().map(|row| row.integrity_check).collect::<Vec<_>>().join("; ")
}

fn acked_grades_survive_kill(backend: TestBackend) {
    let database = TestDatabase::new(backend);
    create_admin(&database);
    let mut server = start_server(&database, 1);
    let graders = set_up_study(&server);

    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(LoadRecord::default()));
    let threads: Vec<_> = graders
        .into_iter()
        .enumerate()
        .map(|(index, grader)| {
            let (base_url, stop, record) = (server.base_url.clone(), Arc::clone(&stop), Arc::clone(&record));
            std::thread::spawn(move || grade_until_stopped(&base_url, &grader, index as u64, &stop, &record))
        })
        .collect();

    let load_started = Instant::now();
    while load_started.elapsed() < KILL_AFTER && record.lock().expect("record lock").acked.len() < KILL_AFTER_GRADES {
        std::thread::sleep(Duration::from_millis(5));
    }
    // `Child::kill` sends SIGKILL on Unix.
    server.child.kill().expect("kill the server");
    server.child.wait().expect("reap the server");
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("grader thread");
    }
    let first_log = server.log_path.clone();
    drop(server);

    let record = Arc::try_unwrap(record).ok().expect("threads ended").into_inner().expect("record lock");
    assert!(record.unexpected.is_empty(), "unexpected responses before the kill: {:?}\n{}", record.unexpected, log_tail(&first_log));
    assert!(!record.acked.is_empty(), "no grade was acknowledged before the kill; the test proved nothing");
    assert!(
        record.acked.len() < ITEMS * OVERLAP as usize,
        "the study ran out of work before the kill ({} grades), so no write was in flight",
        record.acked.len()
    );

    eprintln!("{} grades acknowledged before the kill", record.acked.len());
    let restarted = start_server(&database, 2);
    let stored = stored_grades(&database.url);
    for acked in &record.acked {
        let found = stored.get(&acked.grade_id);
        assert!(found.is_some(), "acknowledged grade {} of item {} is missing after the restart", acked.grade_id, acked.item_id);
        assert_eq!(found, Some(&(acked.item_id, acked.grader_id)), "grade {} is stored with another item or grader", acked.grade_id);
    }
    if backend == TestBackend::Sqlite {
        assert_eq!(sqlite_integrity(&database.url), "ok");
    }

    // The restarted server takes grades again.
    let client = reqwest::blocking::Client::new();
    let token = login(&client, &restarted.base_url, "grader0", GRADER_PASSWORD);
    let next = client.get(format!("{}/api/v1/projects/{SLUG}/next", restarted.base_url)).bearer_auth(&token).send().expect("next");
    assert!(matches!(next.status().as_u16(), 200 | 204), "next after the restart returned {}", next.status());
    if next.status() == 200 {
        let item: Value = next.json().expect("next body");
        let item_id = item["item_id"].as_i64().expect("item_id");
        let grade = client
            .post(format!("{}/api/v1/projects/{SLUG}/items/{item_id}/grades", restarted.base_url))
            .bearer_auth(&token)
            .json(&json!({ "answers": answers_for(7), "comment": "", "time_spent_ms": 1000 }))
            .send()
            .expect("grade after the restart");
        assert_eq!(grade.status(), 201, "grading after the restart failed: {}", grade.text().unwrap_or_default());
    }
}

#[test]
fn sqlite_acked_grades_survive_kill() {
    acked_grades_survive_kill(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_acked_grades_survive_kill() {
    acked_grades_survive_kill(TestBackend::Postgres);
}
