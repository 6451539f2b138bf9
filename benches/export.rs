//! Export benchmark: builds a SQLite study with about a million grades, exports it, and
//! reports the export's wall time and peak resident memory.
//!
//! ```sh
//! cargo bench --bench export                      # 1,000,000 grades
//! cargo bench --bench export -- --grades 100000   # a smaller study
//! ```
//!
//! The study is written with raw SQL in large transactions, so building it takes seconds.
//! The export then runs twice, each time in a fresh process so that its peak memory is its
//! own: once in a child of this program that calls the library and reads its `VmHWM` from
//! `/proc/self/status`, and once as the `quorum export` command under `/usr/bin/time -v`
//! (skipped when that program is missing). `docs/benchmarks.md` lists measured results.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use diesel::connection::SimpleConnection;
use quorum::export::{export_study, DirSink, ExportOptions};
use quorum::store::{now_ms, projects, Database};

/// Graders in the study's pool; each item gets `OVERLAP` of them.
const GRADERS: usize = 8;
const OVERLAP: usize = 3;
/// Rows per INSERT statement while building the study.
const INSERT_BATCH: usize = 1_000;
/// One item in this many has a grade corrected once.
const CORRECTION_EVERY: usize = 100;
/// One item in this many is left in grading, without a resolution.
const OPEN_EVERY: usize = 10;

#[derive(Debug, Parser)]
#[command(name = "export-bench", about = "Time the export of a large SQLite study")]
struct Args {
    /// Grades in the study, corrections included (approximately: whole items are added).
    #[arg(long, default_value_t = 1_000_000)]
    grades: usize,
    /// Keep the study and the exported files in this folder instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Internal: export the study in DATABASE into OUT and print the measurements.
    #[arg(long, num_args = 2, value_names = ["DATABASE", "OUT"], hide = true)]
    child_export: Option<Vec<PathBuf>>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(paths) = &args.child_export {
        return child_export(&paths[0], &paths[1]);
    }

    let temporary = tempfile::tempdir().context("creating a temporary folder")?;
    let dir = args.keep.clone().unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("bench.db");
    if database.exists() {
        bail!("{} exists; give --keep an empty folder", database.display());
    }

    let started = Instant::now();
    let counts = build_study(&database, args.grades)?;
    println!(
        "built study: {} items, {} grades ({} corrections), {} resolutions in {:.1} s",
        counts.items,
        counts.grades,
        counts.corrections,
        counts.resolutions,
        started.elapsed().as_secs_f64()
    );
    let size = std::fs::metadata(&database)?.len();
    println!("database file: {:.0} MB", size as f64 / 1e6);

    let library_out = dir.join("export-library");
    let output = Command::new(std::env::current_exe()?)
        .arg("--child-export")
        .arg(&database)
        .arg(&library_out)
        .output()
        .context("running the export child process")?;
    if !output.status.success() {
        bail!("the export child failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));

    let time_program = Path::new("/usr/bin/time");
    if time_program.exists() {
        let cli_out = dir.join("export-cli");
        let started = Instant::now();
        let output = Command::new(time_program)
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_quorum"))
            .args(["--data-dir"])
            .arg(&dir)
            .arg("--database-url")
            .arg(&database)
            .args(["export", "--project", "bench", "--out"])
            .arg(&cli_out)
            .output()
            .context("running quorum export under /usr/bin/time")?;
        let wall = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!("quorum export failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let report = String::from_utf8_lossy(&output.stderr);
        let peak_kb = report
            .lines()
            .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes): "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
        println!(
            "quorum export command: {wall:.2} s wall (process start and migration check included), peak RSS {:.0} MB",
            peak_kb as f64 / 1024.0
        );
    } else {
        println!("quorum export command: skipped, /usr/bin/time is missing");
    }
    Ok(())
}

/// Exports the study `bench` of `database` into `out` and prints the time and peak memory.
fn child_export(database: &Path, out: &Path) -> anyhow::Result<()> {
    let db = Database::open(&database.to_string_lossy(), 2)?;
    let mut conn = db.conn()?;
    let project = projects::find_by_slug(&mut conn, "bench")?.context("the bench study is missing")?;

    let started = Instant::now();
    let mut sink = DirSink::new(out)?;
    let options = ExportOptions { real_names: false, exported_at: now_ms() };
    let summary = export_study(&mut conn, project, &options, &mut sink)?;
    sink.commit()?;
    let seconds = started.elapsed().as_secs_f64();

    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "library export: {} items, {} grade rows in {seconds:.2} s, peak RSS {:.0} MB",
        summary.items,
        summary.grade_rows,
        peak_kb as f64 / 1024.0
    );
    for file in &summary.files {
        println!("  {:<18} {:>8.1} MB", file.name, file.bytes as f64 / 1e6);
    }
    Ok(())
}

struct Counts {
    items: usize,
    grades: usize,
    corrections: usize,
    resolutions: usize,
}

/// Mixes an index into a fixed pseudo-random number (SplitMix64), so every run builds the
/// same study.
fn mix(index: u64) -> u64 {
    let mut x = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Builds the answers JSON of the bundled guideline: the item's true severity, one step off
/// in one grade of five. One item in twenty is ungradable.
fn answers(item: usize, grader: usize) -> String {
    let truth = mix(item as u64) % 5;
    if truth == 0 && mix(item as u64 + 7) % 4 == 0 {
        return r#"{"gradability":"ungradable"}"#.to_string();
    }
    let noise = mix((item * GRADERS + grader) as u64);
    let dr = match noise % 10 {
        0 => truth.saturating_sub(1),
        1 => (truth + 1).min(4),
        _ => truth,
    };
    let yes_no = |bit: u64| if (truth + bit) % 3 == 0 { "yes" } else { "no" };
    format!(
        r#"{{"cotton_wool_spots":"{}","dme":"absent","dr_severity":"{dr}","gradability":"gradable","haemorrhages":"{}","hard_exudates":"{}","microaneurysms":"{}","new_vessels":"no"}}"#,
        yes_no(1),
        yes_no(2),
        yes_no(0),
        if dr > 0 { "yes" } else { "no" }
    )
}

/// Runs `rows` as multi-row INSERTs of `INSERT_BATCH` rows each.
fn insert_rows(conn: &mut quorum::store::DbConnection, head: &str, rows: &[String]) -> anyhow::Result<()> {
    for chunk in rows.chunks(INSERT_BATCH) {
        conn.batch_execute(&format!("{head} VALUES {};", chunk.join(",")))?;
    }
    Ok(())
}

/// Writes the study `bench`: `GRADERS` graders, items with `OVERLAP` grades each and a few
/// corrections, and a resolution for every item but one in `OPEN_EVERY`.
fn build_study(database: &Path, target_grades: usize) -> anyhow::Result<Counts> {
    let url = database.to_string_lossy().into_owned();
    let db = Database::open(&url, 2)?;
    let mut conn = db.conn()?;
    quorum::bundled::store_bundled_guidelines(&mut conn)?;
    // The file is rebuilt from scratch on every run, so losing it in a crash costs nothing.
    conn.batch_execute("PRAGMA synchronous = OFF;")?;

    let guideline = quorum::store::guidelines::find(&mut conn, "dr-screening", "1.0")?.context("bundled guideline")?;
    let lead = quorum::store::users::create_user(&mut conn, "bench-lead", "Bench lead", "not-a-hash", false)?;
    let spec = projects::ProjectSpec {
        slug: "bench",
        name: "Export benchmark",
        guideline_id: guideline.id,
        overlap: OVERLAP as i32,
        policy: quorum::domain::roles::ResolutionPolicy::MajorityVote,
        policy_params: serde_json::json!({}),
    };
    let project = projects::create_project_with_lead(&mut conn, &spec, lead.id)?;
    let mut graders = Vec::with_capacity(GRADERS);
    for index in 0..GRADERS {
        let name = format!("bench-grader-{index}");
        let user = quorum::store::users::create_user(&mut conn, &name, &name, "not-a-hash", false)?;
        projects::set_member(&mut conn, project.id, user.id, quorum::domain::roles::Role::Grader)?;
        graders.push(user.id);
    }

    let per_item = OVERLAP as f64 + 1.0 / CORRECTION_EVERY as f64;
    let n_items = ((target_grades as f64) / per_item).round().max(1.0) as usize;
    let created = 1_790_000_000_000_i64;
    let mut counts = Counts {
        items: n_items,
        grades: 0,
        corrections: 0,
        resolutions: 0,
    };

    conn.batch_execute("BEGIN;")?;
    let mut item_rows = Vec::with_capacity(INSERT_BATCH);
    for item in 0..n_items {
        let status = if item % OPEN_EVERY == OPEN_EVERY - 1 {
            "grading"
        } else {
            "resolved"
        };
        let metadata = format!(
            r#"{{"site":"site-{}","eye":"{}"}}"#,
            item % 7,
            if item % 2 == 0 { "left" } else { "right" }
        );
        item_rows.push(format!(
            "({}, 'image-{item:07}.jpg', '{:064x}', 'images/none.jpg', 1, 'jpg', 1, 1, '{metadata}', '{status}', 0, 0, 0, {})",
            project.id,
            item + 1,
            created + item as i64
        ));
        if item_rows.len() == INSERT_BATCH {
            insert_items(&mut conn, &mut item_rows)?;
        }
    }
    insert_items(&mut conn, &mut item_rows)?;
    conn.batch_execute("COMMIT;")?;

    let first_item: i64 = {
        use diesel::prelude::*;
        use quorum::store::schema::items;
        items::table
            .filter(items::project_id.eq(project.id))
            .select(diesel::dsl::min(items::id))
            .first::<Option<i64>>(&mut conn)?
            .unwrap_or(1)
    };

    // Grade ids are assigned in insertion order, so the id of each row is known in advance
    // and corrections can name the grade they supersede.
    conn.batch_execute("BEGIN;")?;
    let mut next_grade_id: i64 = 1;
    let mut grade_rows = Vec::with_capacity(INSERT_BATCH * 2);
    let mut resolution_rows = Vec::with_capacity(INSERT_BATCH);
    let mut comment = String::new();
    for item in 0..n_items {
        let item_id = first_item + item as i64;
        let mut first_of_item = 0;
        for slot in 0..OVERLAP {
            let grader = (item + slot) % GRADERS;
            comment.clear();
            match mix(item as u64 * 31 + slot as u64) % 40 {
                0 => {
                    let _ = write!(comment, "faint, possibly {} lesions", slot + 1);
                }
                1 => comment.push_str("\"cotton wool\"? see the nasal arcade,\nsecond look: Müller cells"),
                _ => {}
            }
            if slot == 0 {
                first_of_item = next_grade_id;
            }
            grade_rows.push(format!(
                "({item_id}, {}, 0, {}, '{}', '{comment}', {}, 'web', NULL, {})",
                graders[grader],
                guideline.id,
                answers(item, grader),
                20_000 + (mix(item as u64 + slot as u64) % 60_000),
                created + (item * OVERLAP + slot) as i64 * 1000
            ));
            next_grade_id += 1;
        }
        if item % CORRECTION_EVERY == 0 {
            grade_rows.push(format!(
                "({item_id}, {}, 0, {}, '{}', 'corrected', 5000, 'web', {first_of_item}, {})",
                graders[item % GRADERS],
                guideline.id,
                answers(item, item % GRADERS),
                created + (item * OVERLAP) as i64 * 1000 + 500
            ));
            next_grade_id += 1;
            counts.corrections += 1;
        }
        if item % OPEN_EVERY != OPEN_EVERY - 1 {
            let method = if mix(item as u64 + 3) % 3 == 0 {
                "majority"
            } else {
                "unanimous"
            };
            resolution_rows.push(format!(
                "({item_id}, '{}', '{method}', NULL, 1, 'bench', NULL, {})",
                answers(item, 0),
                created + (item * OVERLAP + OVERLAP) as i64 * 1000
            ));
        }
        if grade_rows.len() >= INSERT_BATCH {
            counts.grades += grade_rows.len();
            insert_rows(
                &mut conn,
                "INSERT INTO grades (item_id, grader_id, round, guideline_id, answers, comment, time_spent_ms, source, supersedes, created_at)",
                &grade_rows,
            )?;
            grade_rows.clear();
        }
        if resolution_rows.len() >= INSERT_BATCH {
            counts.resolutions += resolution_rows.len();
            insert_rows(
                &mut conn,
                "INSERT INTO resolutions (item_id, answers, method, decided_by, rounds_used, reason, supersedes, created_at)",
                &resolution_rows,
            )?;
            resolution_rows.clear();
        }
    }
    counts.grades += grade_rows.len();
    counts.resolutions += resolution_rows.len();
    insert_rows(
        &mut conn,
        "INSERT INTO grades (item_id, grader_id, round, guideline_id, answers, comment, time_spent_ms, source, supersedes, created_at)",
        &grade_rows,
    )?;
    insert_rows(
        &mut conn,
        "INSERT INTO resolutions (item_id, answers, method, decided_by, rounds_used, reason, supersedes, created_at)",
        &resolution_rows,
    )?;
    conn.batch_execute("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(counts)
}

fn insert_items(conn: &mut quorum::store::DbConnection, rows: &mut Vec<String>) -> anyhow::Result<()> {
    insert_rows(
        conn,
        "INSERT INTO items (project_id, name, sha256, stored_path, byte_size, format, width, height, metadata, status, round, extra_grades, priority, created_at)",
        rows,
    )?;
    rows.clear();
    Ok(())
}
