//! Load driver for the grading API: many graders loop "next, then grade" against a running
//! server and the driver reports throughput, latency percentiles and error counts.
//!
//! The driver creates a fresh study (a unique slug), its graders and its images through the
//! API, so it needs only an admin account on the server. It talks to loopback addresses only.
//!
//! ```sh
//! quorum --data-dir /tmp/load-data --addr 127.0.0.1:8091 serve &
//! cargo bench --bench load -- --url http://127.0.0.1:8091 \
//!     --admin-user admin --admin-password 'a-long-password' --graders 200 --duration 30
//! ```
//!
//! `docs/benchmarks.md` lists measured results and how they were taken.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Maximum length of the load phase, in seconds.
const MAX_DURATION_S: u64 = 600;

/// Grades per second the default item count is sized for: the throughput target of the
/// grading API.
const TARGET_GRADES_PER_S: u64 = 3_000;

/// Password of every grader account the driver creates.
const GRADER_PASSWORD: &str = "load-driver-grader-password";

/// Pause after a transport error or a 204 before the grader's next request, so a stopped
/// server or an exhausted study does not turn the loop into a busy spin.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Limit on one request, so a hung server ends the run instead of blocking it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Parser)]
#[command(name = "load", about = "Drive concurrent graders against a Quorum server on a loopback address")]
struct Args {
    /// Base URL of the server, for example http://127.0.0.1:8091; the host must be a
    /// loopback IP address.
    #[arg(long)]
    url: Option<String>,

    /// Admin account used to create the study and the grader accounts.
    #[arg(long, default_value = "admin")]
    admin_user: String,

    /// Password of the admin account.
    #[arg(long, env = "QUORUM_LOAD_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,

    /// Concurrent graders, each with its own account and session.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    graders: u32,

    /// Images to upload (default: enough for 3,000 grades per second over the whole run,
    /// plus one per grader).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    items: Option<u32>,

    /// Grades each image needs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=50))]
    overlap: i32,

    /// Length of the load phase, in seconds (1 to 600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_S))]
    duration: u64,

    /// Seed of the generated images and answers.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// File that receives one line `item_id grader grade_id` per grade acknowledged with 201,
    /// written as soon as the acknowledgement arrives (appended, not truncated).
    #[arg(long)]
    acked: Option<PathBuf>,

    /// Image uploads in flight at once during setup.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    upload_concurrency: u32,

    /// Process id of the server, to report its CPU time during the load phase (Linux only).
    #[arg(long)]
    server_pid: Option<u32>,

    /// Passed by `cargo bench`; without it (as under `cargo test --benches`) and without
    /// `--url` the driver prints how to run it and exits.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.url.is_none() && !args.bench {
        println!("load: nothing to do; run `cargo bench --bench load -- --url http://127.0.0.1:PORT --admin-password ...`");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Checks that `url` is an http URL whose host is a loopback IP address, and returns it
/// without a trailing slash.
fn loopback_base_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a valid URL"))?;
    if parsed.scheme() != "http" {
        bail!("--url {url:?} must use http://");
    }
    let host = parsed.host_str().unwrap_or("");
    let address: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| anyhow::anyhow!("--url host {host:?} is not an IP address; give a loopback address such as 127.0.0.1"))?;
    if !address.is_loopback() {
        bail!("--url host {address} is not a loopback address; the driver only sends load to 127.0.0.0/8 or ::1");
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        bail!("--url {url:?} must be a base URL without a path or query, such as http://127.0.0.1:8091");
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// One grader account and its session.
#[derive(Debug, Clone)]
struct Grader {
    username: String,
    token: String,
}

/// The HTTP client, the server's base URL and the study under load.
struct Target {
    client: reqwest::Client,
    base: String,
    slug: String,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a JSON POST and fails unless the status is `expected`.
    async fn post_expecting(&self, path: &str, token: &str, body: &Value, expected: u16) -> anyhow::Result<Value> {
        let response = self.client.post(self.url(path)).bearer_auth(token).json(body).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != expected {
            bail!("POST {path} returned {status} instead of {expected}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .with_context(|| format!("login request to {base} failed; is the server running?"))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 {
        bail!("login of {username:?} returned {status}: {body}");
    }
    body["token"].as_str().map(str::to_string).context("login response has no token")
}

async fn run(args: Args) -> anyhow::Result<()> {
    let url = args.url.as_deref().context("--url is missing; give the server's base URL, such as http://127.0.0.1:8091")?;
    let base = loopback_base_url(url)?;
    let admin_password = args
        .admin_password
        .clone()
        .context("--admin-password is missing; give it or set QUORUM_LOAD_ADMIN_PASSWORD")?;
    let grader_count = args.graders as usize;
    let images_to_upload = args.items.map_or_else(|| default_items(args.duration, args.overlap, grader_count), |n| n as usize);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(grader_count + args.upload_concurrency as usize)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let admin_token = login(&client, &base, &args.admin_user, &admin_password).await?;

    let run_id = format!("{}-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(), args.seed);
    let target = Arc::new(Target { client, base, slug: format!("load-{run_id}") });
    target
        .post_expecting(
            "/api/v1/projects",
            &admin_token,
            &json!({
                "slug": target.slug, "name": format!("Load test {run_id}"), "guideline_key": "dr-screening",
                "guideline_version": "1.0", "overlap": args.overlap, "policy": "majority-vote"
            }),
            201,
        )
        .await?;
    eprintln!("study {} created on {}", target.slug, target.base);

    let graders = create_graders(&target, &admin_token, &run_id, grader_count).await?;
    let item_count = upload_items(&target, &admin_token, images_to_upload, args.seed, args.upload_concurrency as usize).await?;

    let acked = match &args.acked {
        Some(path) => Some(Arc::new(Mutex::new(
            OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening --acked file {}", path.display()))?,
        ))),
        None => None,
    };
    let summary = run_load(&target, &graders, Duration::from_secs(args.duration), args.seed, acked, args.server_pid).await;
    summary.print(&target.slug, graders.len(), item_count, args.overlap);
    Ok(())
}

/// Returns the number of images for `duration_s` seconds at [`TARGET_GRADES_PER_S`] with
/// `overlap` grades each, plus one per grader.
fn default_items(duration_s: u64, overlap: i32, graders: usize) -> usize {
    let grades = duration_s * TARGET_GRADES_PER_S;
    grades.div_ceil(overlap.max(1) as u64) as usize + graders
}

/// Creates, adds and logs in `count` graders. Accounts and logins run eight at a time (each
/// runs an argon2 hash on the server); members are added one at a time.
async fn create_graders(target: &Target, admin_token: &str, run_id: &str, count: usize) -> anyhow::Result<Vec<Grader>> {
    let started = Instant::now();
    let usernames: Vec<String> = (0..count).map(|index| format!("load-{run_id}-g{index:05}")).collect();
    stream::iter(&usernames)
        .map(|username| async move {
            let account = json!({ "username": username, "password": GRADER_PASSWORD, "is_admin": false });
            target.post_expecting("/api/v1/users", admin_token, &account, 201).await
        })
        .buffer_unordered(8)
        .try_collect::<Vec<Value>>()
        .await?;
    eprintln!("graders: {count} accounts created in {:.1} s", started.elapsed().as_secs_f64());

    // NOTE: one at a time because concurrent member additions fail on SQLite with 500
    // "database is locked": the server's membership transaction reads before it writes, and
    // SQLite cannot upgrade such a transaction once another connection has committed.
    let members_path = format!("/api/v1/projects/{}/members", target.slug);
    for username in &usernames {
        target.post_expecting(&members_path, admin_token, &json!({ "username": username, "role": "grader" }), 201).await?;
    }

    let graders: Vec<Grader> = stream::iter(usernames)
        .map(|username| async move {
            let token = login(&target.client, &target.base, &username, GRADER_PASSWORD).await?;
            anyhow::Ok(Grader { username, token })
        })
        .buffered(8)
        .try_collect()
        .await?;
    eprintln!("graders: {count} created, added and logged in in {:.1} s", started.elapsed().as_secs_f64());
    Ok(graders)
}

/// Encodes an 8x8 RGB PNG whose pixels encode `index` and `seed`, so every image of a run
/// differs.
fn png_for(index: usize, seed: u64) -> Vec<u8> {
    let index_bytes = (index as u64).to_le_bytes();
    let seed_bytes = seed.to_le_bytes();
    let image = image::RgbImage::from_fn(8, 8, |x, y| {
        let position = (y * 8 + x) as usize;
        let value = |channel: usize| -> u8 {
            let byte = position * 3 + channel;
            match byte {
                0..=7 => index_bytes[byte],
                8..=15 => seed_bytes[byte - 8],
                _ => (byte as u8).wrapping_mul(31).wrapping_add(index_bytes[byte % 8]),
            }
        };
        image::Rgb([value(0), value(1), value(2)])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).expect("encoding an 8x8 PNG in memory cannot fail");
    bytes.into_inner()
}

/// Uploads `count` distinct images, `concurrency` at a time, and prints progress.
async fn upload_items(target: &Target, admin_token: &str, count: usize, seed: u64, concurrency: usize) -> anyhow::Result<usize> {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let step = (count / 10).max(1) as u64;
    stream::iter(0..count)
        .map(|index| {
            let done = &done;
            async move {
                let path = format!("/api/v1/projects/{}/items?name=load-{index:07}.png", target.slug);
                let response = target
                    .client
                    .post(target.url(&path))
                    .bearer_auth(admin_token)
                    .header("content-type", "image/png")
                    .body(png_for(index, seed))
                    .send()
                    .await?;
                let status = response.status().as_u16();
                if status != 201 {
                    let text = response.text().await.unwrap_or_default();
                    bail!("uploading image {index} returned {status}: {text}");
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % step == 0 {
                    let rate = finished as f64 / started.elapsed().as_secs_f64();
                    eprintln!("images: {finished}/{count} uploaded ({rate:.0}/s)");
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("images: {count} uploaded in {seconds:.1} s ({:.0}/s)", count as f64 / seconds);
    Ok(count)
}

const SEVERITIES: [&str; 5] = ["0", "1", "2", "3", "4"];
const DME_GRADES: [&str; 4] = ["absent", "mild", "moderate", "severe"];
const LESIONS: [&str; 5] = ["microaneurysms", "haemorrhages", "hard_exudates", "cotton_wool_spots", "new_vessels"];

/// Share of items whose reference answer is "ungradable".
const UNGRADABLE_SHARE: f64 = 0.05;
/// Chance that a grader departs from the reference on one field.
const DISAGREEMENT_CHANCE: f64 = 0.05;

/// The answers most graders give for one item, drawn from the seed and the item id.
struct ReferenceAnswers {
    gradable: bool,
    severity: usize,
    dme: usize,
    lesions: [bool; 5],
}

impl ReferenceAnswers {
    fn for_item(seed: u64, item_id: i64) -> ReferenceAnswers {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (item_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        ReferenceAnswers {
            gradable: !rng.random_bool(UNGRADABLE_SHARE),
            severity: rng.random_range(0..SEVERITIES.len()),
            dme: rng.random_range(0..DME_GRADES.len()),
            lesions: std::array::from_fn(|_| rng.random_bool(0.3)),
        }
    }

    /// Draws one grader's valid answers: the reference, except that each field differs with
    /// [`DISAGREEMENT_CHANCE`], so most items resolve by majority vote and a few need another
    /// grader.
    fn graded_by(&self, rng: &mut ChaCha8Rng) -> Value {
        let gradable = if rng.random_bool(DISAGREEMENT_CHANCE) { !self.gradable } else { self.gradable };
        if !gradable {
            return json!({ "gradability": "ungradable" });
        }
        let mut pick = |reference: usize, options: usize| {
            if rng.random_bool(DISAGREEMENT_CHANCE) {
                rng.random_range(0..options)
            } else {
                reference
            }
        };
        let severity = SEVERITIES[pick(self.severity, SEVERITIES.len())];
        let dme = DME_GRADES[pick(self.dme, DME_GRADES.len())];
        let mut answers = json!({ "gradability": "gradable", "dr_severity": severity, "dme": dme });
        for (lesion, present) in LESIONS.iter().zip(self.lesions) {
            let present = if rng.random_bool(DISAGREEMENT_CHANCE) { !present } else { present };
            answers[*lesion] = json!(if present { "yes" } else { "no" });
        }
        answers
    }
}

/// Observations of one grader's loop. Latencies are in microseconds, from sending the
/// request to reading the whole response body.
#[derive(Default)]
struct GraderStats {
    next_latencies_us: Vec<u32>,
    submit_latencies_us: Vec<u32>,
    grades_acknowledged: u64,
    no_item_responses: u64,
    statuses: BTreeMap<String, u64>,
    transport_errors: BTreeMap<String, u64>,
}

impl GraderStats {
    fn merge(&mut self, other: GraderStats) {
        self.next_latencies_us.extend(other.next_latencies_us);
        self.submit_latencies_us.extend(other.submit_latencies_us);
        self.grades_acknowledged += other.grades_acknowledged;
        self.no_item_responses += other.no_item_responses;
        for (key, count) in other.statuses {
            *self.statuses.entry(key).or_default() += count;
        }
        for (key, count) in other.transport_errors {
            *self.transport_errors.entry(key).or_default() += count;
        }
    }

    fn record_status(&mut self, request: &str, status: u16) {
        *self.statuses.entry(format!("{request} {status}")).or_default() += 1;
    }

    fn record_transport_error(&mut self, request: &str, error: &reqwest::Error) {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "failed"
        };
        *self.transport_errors.entry(format!("{request} {kind}")).or_default() += 1;
    }
}

fn elapsed_us(started: Instant) -> u32 {
    started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// Runs one grader's "next, then grade" loop until `deadline`. Requests started before the
/// deadline are completed and counted.
async fn grader_loop(
    target: Arc<Target>,
    grader: Grader,
    grader_index: usize,
    deadline: Instant,
    seed: u64,
    acked: Option<Arc<Mutex<File>>>,
    acknowledged_total: Arc<AtomicU64>,
) -> GraderStats {
    let mut stats = GraderStats::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(grader_index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let next_url = target.url(&format!("/api/v1/projects/{}/next", target.slug));
    while Instant::now() < deadline {
        let started = Instant::now();
        let response = target.client.get(&next_url).bearer_auth(&grader.token).send().await;
        let (status, body) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => (status, body),
                    Err(error) => {
                        stats.record_transport_error("next", &error);
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                }
            }
            Err(error) => {
                stats.record_transport_error("next", &error);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        stats.next_latencies_us.push(elapsed_us(started));
        stats.record_status("next", status);
        if status == 204 {
            stats.no_item_responses += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        if status != 200 {
            continue;
        }
        let Some(item_id) = serde_json::from_slice::<Value>(&body).ok().and_then(|item| item["item_id"].as_i64()) else {
            *stats.statuses.entry("next malformed-body".into()).or_default() += 1;
            continue;
        };

        let answers = ReferenceAnswers::for_item(seed, item_id).graded_by(&mut rng);
        let grade = json!({ "answers": answers, "comment": "", "time_spent_ms": rng.random_range(2_000..60_000) });
        let grade_url = target.url(&format!("/api/v1/projects/{}/items/{item_id}/grades", target.slug));
        let started = Instant::now();
        let response = target.client.post(&grade_url).bearer_auth(&grader.token).json(&grade).send().await;
        let (status, body) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => (status, body),
                    Err(error) => {
                        stats.record_transport_error("submit", &error);
                        continue;
                    }
                }
            }
            Err(error) => {
                stats.record_transport_error("submit", &error);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        stats.submit_latencies_us.push(elapsed_us(started));
        stats.record_status("submit", status);
        if status != 201 {
            continue;
        }
        stats.grades_acknowledged += 1;
        acknowledged_total.fetch_add(1, Ordering::Relaxed);
        if let Some(file) = &acked {
            let grade_id = serde_json::from_slice::<Value>(&body).ok().and_then(|receipt| receipt["grade_id"].as_i64());
            let line = format!("{item_id} {} {}\n", grader.username, grade_id.map_or("unknown".to_string(), |id| id.to_string()));
            // An unbuffered File: the line reaches the kernel before the next request starts.
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = file.write_all(line.as_bytes()) {
                eprintln!("error: writing to the --acked file failed: {error}");
            }
        }
    }
    stats
}

/// User plus system CPU time of a process, in seconds, from `/proc/PID/stat`.
///
/// NOTE: assumes the kernel's USER_HZ of 100 ticks per second, which Linux uses on every
/// mainstream architecture; elsewhere the value is wrong by that ratio. Returns `None` off
/// Linux or when the process is gone.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime) are the 12th and 13th after the name.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// The merged observations of a load phase.
struct LoadSummary {
    stats: GraderStats,
    wall: Duration,
    driver_cpu_s: Option<f64>,
    server_cpu_s: Option<f64>,
}

async fn run_load(
    target: &Arc<Target>,
    graders: &[Grader],
    duration: Duration,
    seed: u64,
    acked: Option<Arc<Mutex<File>>>,
    server_pid: Option<u32>,
) -> LoadSummary {
    let server_pid = server_pid.map(|pid| pid.to_string());
    let driver_cpu_before = cpu_seconds("self");
    let server_cpu_before = server_pid.as_deref().and_then(cpu_seconds);
    let acknowledged_total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    eprintln!("load: {} graders for {} s", graders.len(), duration.as_secs());

    let tasks: Vec<_> = graders
        .iter()
        .enumerate()
        .map(|(index, grader)| {
            tokio::spawn(grader_loop(
                Arc::clone(target),
                grader.clone(),
                index,
                deadline,
                seed,
                acked.clone(),
                Arc::clone(&acknowledged_total),
            ))
        })
        .collect();

    let reporter = {
        let acknowledged_total = Arc::clone(&acknowledged_total);
        tokio::spawn(async move {
            let mut previous = 0;
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(5), Duration::from_secs(5));
            loop {
                ticker.tick().await;
                let now = acknowledged_total.load(Ordering::Relaxed);
                eprintln!(
                    "load: {:>4.0} s, {now} grades acknowledged ({:.0}/s in the last 5 s)",
                    started.elapsed().as_secs_f64(),
                    (now - previous) as f64 / 5.0
                );
                previous = now;
            }
        })
    };

    let mut stats = GraderStats::default();
    for task in tasks {
        match task.await {
            Ok(grader_stats) => stats.merge(grader_stats),
            Err(error) => eprintln!("error: a grader task failed: {error}"),
        }
    }
    reporter.abort();
    let wall = started.elapsed();
    let driver_cpu_s = driver_cpu_before.zip(cpu_seconds("self")).map(|(before, after)| after - before);
    let server_cpu_s = server_cpu_before.zip(server_pid.as_deref().and_then(cpu_seconds)).map(|(before, after)| after - before);
    LoadSummary { stats, wall, driver_cpu_s, server_cpu_s }
}

/// The value at percentile `p` (0 to 100) of sorted `values` by the nearest-rank method.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_row(name: &str, latencies_us: &mut [u32]) -> String {
    latencies_us.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    format!(
        "{name:<8} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        latencies_us.len(),
        ms(percentile(latencies_us, 50.0)),
        ms(percentile(latencies_us, 90.0)),
        ms(percentile(latencies_us, 99.0)),
        ms(latencies_us.last().copied().unwrap_or(0)),
    )
}

impl LoadSummary {
    fn print(mut self, slug: &str, graders: usize, items: usize, overlap: i32) {
        let seconds = self.wall.as_secs_f64();
        let stats = &mut self.stats;
        let requests = stats.next_latencies_us.len() + stats.submit_latencies_us.len();
        println!();
        println!("study {slug}: {graders} graders, {items} images, overlap {overlap}, load phase {seconds:.2} s");
        println!(
            "graded items/s: {:.1} ({} grades acknowledged with 201)",
            stats.grades_acknowledged as f64 / seconds,
            stats.grades_acknowledged
        );
        println!("requests/s:     {:.1} ({requests} responses)", requests as f64 / seconds);

        println!("latency (ms)   requests       p50       p90       p99       max");
        println!("{}", latency_row("next", &mut stats.next_latencies_us));
        println!("{}", latency_row("submit", &mut stats.submit_latencies_us));

        let non_success: Vec<String> = stats
            .statuses
            .iter()
            .filter(|(key, _)| !key.split(' ').nth(1).is_some_and(|status| status.starts_with('2')))
            .map(|(key, count)| format!("{key}: {count}"))
            .collect();
        println!("non-2xx responses: {}", if non_success.is_empty() { "none".to_string() } else { non_success.join(", ") });
        let transport: Vec<String> = stats.transport_errors.iter().map(|(key, count)| format!("{key}: {count}")).collect();
        println!("transport errors: {}", if transport.is_empty() { "none".to_string() } else { transport.join(", ") });
        if stats.no_item_responses > 0 {
            println!(
                "204 (no item waiting): {}; the graders ran out of images, so give more with --items",
                stats.no_item_responses
            );
        }

        let share = |cpu: f64| 100.0 * cpu / seconds;
        match self.driver_cpu_s {
            Some(cpu) => println!("driver CPU: {cpu:.1} s ({:.0}% of one core)", share(cpu)),
            None => println!("driver CPU: not available"),
        }
        if let Some(cpu) = self.server_cpu_s {
            println!("server CPU: {cpu:.1} s ({:.0}% of one core)", share(cpu));
        }
    }
}
