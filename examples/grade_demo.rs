//! Grades the demo photographs under one resolution policy through the HTTP API of a running
//! server, with scripted graders who disagree in fixed patterns, adjudication rounds, a lead
//! who excludes one item and a senior who arbitrates the rest.
//!
//! ```text
//! quorum demo --addr 127.0.0.1:8080            # in one terminal
//! cargo run --example grade_demo -- --url http://127.0.0.1:8080 --policy adjudication
//! ```
//!
//! Each run creates a new study `demo-<policy>` (or `--slug`) with the 56 photographs of the
//! demo and prints where every item ended. The script is the one `tests/policies.rs` runs.

#[path = "../tests/demo_script/mod.rs"]
mod demo_script;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use demo_script::{policy_run, Api, Credentials, Team, POLICIES};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Grade the demo photographs under one policy through the HTTP API")]
struct Args {
    /// Base URL of a server started with `quorum demo`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Policy run: majority, majority-tolerance, majority-escalation, arbitration,
    /// adjudication or adjudication-escalation.
    #[arg(long)]
    policy: String,
    /// The demo's credentials file (`role username password` lines).
    #[arg(long, default_value = "./quorum-data/demo-credentials.txt")]
    credentials: PathBuf,
    /// Slug of the study to create; default `demo-<policy>`.
    #[arg(long)]
    slug: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = policy_run(&args.policy).with_context(|| {
        let names: Vec<&str> = POLICIES.iter().map(|run| run.name).collect();
        format!("policy {:?} is unknown: use one of {}", args.policy, names.join(", "))
    })?;
    let text = std::fs::read_to_string(&args.credentials).with_context(|| {
        format!(
            "reading {}; give the demo's file with --credentials",
            args.credentials.display()
        )
    })?;
    let credentials = Credentials::parse(&text).with_context(|| format!("reading {}", args.credentials.display()))?;
    let (photographs, _) = quorum::demo::seed_files()?;
    let slug = args.slug.unwrap_or_else(|| format!("demo-{}", run.name));

    let api = Api::new(&args.url)?;
    let team = Team::login(&api, &credentials)?;
    println!("Study {slug}: policy {} with parameters {}", run.policy, run.params);
    let outcome = demo_script::run_study(&api, &team, &run, &slug, &photographs)?;
    println!(
        "{} photographs, {} grades, {} arbitrated, excluded item: {}",
        outcome.items.len(),
        outcome.grades,
        outcome.arbitrations,
        outcome.excluded.map_or_else(|| "none".to_string(), |id| id.to_string())
    );
    for item in &outcome.items {
        let review = api.get_json(
            &team.lead,
            &format!("/api/v1/projects/{slug}/items/{}/review", item.item_id),
        )?;
        let method = review["resolution"]["method"].as_str().unwrap_or("-");
        println!(
            "  {:<24} pattern {}  {:<9} {method}",
            item.name,
            item.pattern,
            review["status"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
