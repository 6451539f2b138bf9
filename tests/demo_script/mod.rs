//! A scripted study of the demo photographs under one resolution policy, driven only through
//! the HTTP API with the demo accounts that `quorum demo` creates.
//!
//! The lead creates a study with the policy, adds the senior and the three graders, and
//! uploads the 56 photographs that `quorum demo` imports. Each grader then leases and grades
//! until nothing is left, disagreeing in a fixed pattern that depends on the photograph's
//! position in upload order ([`answers`]). Where the policy opens adjudication rounds, each
//! grader reads the review, posts a message and grades again. At the end the lead excludes
//! the first item waiting for arbitration and the senior arbitrates the others.
//!
//! `tests/policies.rs` runs this against a test server and checks the database;
//! `examples/grade_demo.rs` runs it against a server started with `quorum demo`.

#![allow(dead_code)]

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

/// A username and its password.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
}

/// The demo accounts, as `quorum demo` writes them to `demo-credentials.txt`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub lead: Account,
    pub senior: Account,
    pub graders: Vec<Account>,
}

impl Credentials {
    /// Parses `role username password` lines; needs one lead, one senior and three graders.
    pub fn parse(text: &str) -> anyhow::Result<Credentials> {
        let (mut lead, mut senior, mut graders) = (None, None, Vec::new());
        for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [role, username, password] = parts[..] else {
                bail!("line {} is not `role username password`", number + 1);
            };
            let account = Account {
                username: username.to_string(),
                password: password.to_string(),
            };
            match role {
                "lead" => lead = Some(account),
                "senior" => senior = Some(account),
                "grader" => graders.push(account),
                other => bail!("line {} names the unknown role {other:?}", number + 1),
            }
        }
        ensure!(
            graders.len() == 3,
            "the credentials list {} graders; the script needs the 3 demo graders",
            graders.len()
        );
        Ok(Credentials {
            lead: lead.context("the credentials name no lead")?,
            senior: senior.context("the credentials name no senior")?,
            graders,
        })
    }
}

/// A policy with its parameters and the outcome the disagreement patterns must reach.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRun {
    /// Name on the command line and in the study slug.
    pub name: &'static str,
    /// `projects.policy`.
    pub policy: &'static str,
    /// `projects.policy_params` as JSON text.
    pub params: &'static str,
    /// Resolution method of an item of each pattern, unless it is the excluded one.
    pub methods: [&'static str; PATTERNS],
    /// `resolutions.rounds_used` of an item of each pattern.
    pub rounds: [i32; PATTERNS],
}

/// Number of disagreement patterns; photograph `i` follows pattern `i % PATTERNS`.
pub const PATTERNS: usize = 5;

/// Every policy the project supports, with and without the parameters that change routing.
pub const POLICIES: [PolicyRun; 6] = [
    PolicyRun {
        name: "majority",
        policy: "majority-vote",
        params: "{}",
        methods: ["unanimous", "majority", "arbitration", "majority", "majority"],
        rounds: [1, 1, 1, 1, 1],
    },
    PolicyRun {
        // One step apart on DR severity agrees; a two-of-three majority is below the share.
        name: "majority-tolerance",
        policy: "majority-vote",
        params: r#"{"ordinal_tolerance": 1, "majority_share": 0.75}"#,
        methods: ["unanimous", "majority", "arbitration", "arbitration", "arbitration"],
        rounds: [1, 1, 1, 1, 1],
    },
    PolicyRun {
        // DR severities more than one step apart open an adjudication round before arbitration.
        name: "majority-escalation",
        policy: "majority-vote",
        params: r#"{"adjudication_rounds": 1, "escalation": {"field": "dr_severity", "arbitration_max_steps": 1}}"#,
        methods: ["unanimous", "majority", "arbitration", "majority", "majority"],
        rounds: [1, 1, 2, 1, 1],
    },
    PolicyRun {
        name: "arbitration",
        policy: "senior-arbitration",
        params: "{}",
        methods: ["unanimous", "arbitration", "arbitration", "arbitration", "arbitration"],
        rounds: [1, 1, 1, 1, 1],
    },
    PolicyRun {
        name: "adjudication",
        policy: "adjudication",
        params: r#"{"adjudication_rounds": 2}"#,
        methods: [
            "unanimous",
            "adjudication",
            "arbitration",
            "adjudication",
            "adjudication",
        ],
        rounds: [1, 2, 3, 2, 2],
    },
    PolicyRun {
        // Close DR severities go to the senior at once; far ones and "not asked" are adjudicated.
        name: "adjudication-escalation",
        policy: "adjudication",
        params: r#"{"adjudication_rounds": 2, "escalation": {"field": "dr_severity", "arbitration_max_steps": 1}}"#,
        methods: [
            "unanimous",
            "arbitration",
            "arbitration",
            "adjudication",
            "adjudication",
        ],
        rounds: [1, 1, 3, 2, 2],
    },
];

/// Finds a policy run by its name.
pub fn policy_run(name: &str) -> Option<PolicyRun> {
    POLICIES.iter().copied().find(|run| run.name == name)
}

fn gradable(dr: &str) -> Value {
    json!({
        "gradability": "gradable", "dr_severity": dr, "dme": "absent", "microaneurysms": "no",
        "haemorrhages": "no", "hard_exudates": "no", "cotton_wool_spots": "no", "new_vessels": "no",
    })
}

fn ungradable() -> Value {
    json!({ "gradability": "ungradable" })
}

/// The answers of grader `grader` (0 to 2) in `round` to an item of `pattern`:
///
/// 0. everyone agrees;
/// 1. one grader is one step lower on DR severity, and agrees once adjudication opens;
/// 2. three severities two steps apart each, kept in every round;
/// 3. one grader finds the image ungradable, and changes their mind in adjudication;
/// 4. two find it ungradable, and the third joins them in adjudication.
pub fn answers(pattern: usize, grader: usize, round: i64) -> Value {
    let adjudicated = round > 0;
    match pattern {
        0 => gradable("2"),
        1 if grader == 0 && !adjudicated => gradable("1"),
        1 => gradable("2"),
        2 => gradable(["0", "2", "4"][grader]),
        3 if grader == 2 && !adjudicated => ungradable(),
        3 => gradable("3"),
        _ if grader == 2 && !adjudicated => gradable("1"),
        _ => ungradable(),
    }
}

/// A blocking client of one server.
pub struct Api {
    client: reqwest::blocking::Client,
    base_url: String,
}

/// Reads a response as JSON after checking its status.
fn expect_status(response: reqwest::blocking::Response, status: u16, what: &str) -> anyhow::Result<Value> {
    let actual = response.status().as_u16();
    let text = response
        .text()
        .with_context(|| format!("{what}: reading the response"))?;
    ensure!(
        actual == status,
        "{what}: expected status {status}, got {actual}: {text}"
    );
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: the response is not JSON"))
}

impl Api {
    pub fn new(base_url: &str) -> anyhow::Result<Api> {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Logs in and returns the bearer token.
    pub fn login(&self, account: &Account) -> anyhow::Result<String> {
        let body = json!({ "username": account.username, "password": account.password });
        let response = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .context("login request")?;
        let body = expect_status(response, 200, &format!("login of {}", account.username))?;
        Ok(body["token"]
            .as_str()
            .context("login response has no token")?
            .to_string())
    }

    pub fn get(&self, token: &str, path: &str) -> anyhow::Result<reqwest::blocking::Response> {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .with_context(|| format!("GET {path}"))
    }

    /// GETs `path` and returns its JSON body, which must come with status 200.
    pub fn get_json(&self, token: &str, path: &str) -> anyhow::Result<Value> {
        expect_status(self.get(token, path)?, 200, &format!("GET {path}"))
    }

    /// POSTs `body` to `path` and returns the JSON answer, which must come with `status`.
    pub fn post_json(&self, token: &str, path: &str, body: &Value, status: u16) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .with_context(|| format!("POST {path}"))?;
        expect_status(response, status, &format!("POST {path}"))
    }

    /// Uploads one photograph to a study and returns its item id.
    pub fn upload(&self, token: &str, slug: &str, name: &str, bytes: &[u8]) -> anyhow::Result<i64> {
        let path = format!("/api/v1/projects/{slug}/items");
        let response = self
            .client
            .post(self.url(&path))
            .query(&[("name", name)])
            .bearer_auth(token)
            .body(bytes.to_vec())
            .send()
            .with_context(|| format!("uploading {name}"))?;
        let body = expect_status(response, 201, &format!("upload of {name}"))?;
        body["item_id"]
            .as_i64()
            .with_context(|| format!("upload of {name}: no item id"))
    }
}

/// The logged-in demo accounts.
pub struct Team {
    pub lead: String,
    pub senior: String,
    pub graders: Vec<String>,
    pub credentials: Credentials,
}

impl Team {
    pub fn login(api: &Api, credentials: &Credentials) -> anyhow::Result<Team> {
        Ok(Team {
            lead: api.login(&credentials.lead)?,
            senior: api.login(&credentials.senior)?,
            graders: credentials
                .graders
                .iter()
                .map(|account| api.login(account))
                .collect::<anyhow::Result<_>>()?,
            credentials: credentials.clone(),
        })
    }
}

/// One uploaded photograph and its disagreement pattern.
#[derive(Debug, Clone)]
pub struct ScriptedItem {
    pub item_id: i64,
    pub name: String,
    pub pattern: usize,
}

/// What a scripted study did.
#[derive(Debug, Clone)]
pub struct StudyOutcome {
    pub slug: String,
    pub items: Vec<ScriptedItem>,
    /// The item the lead excluded, if any item went to arbitration.
    pub excluded: Option<i64>,
    pub grades: usize,
    pub arbitrations: usize,
}

impl StudyOutcome {
    fn pattern_of(&self, item_id: i64) -> anyhow::Result<usize> {
        self.items
            .iter()
            .find(|item| item.item_id == item_id)
            .map(|item| item.pattern)
            .context("item of another study")
    }
}

/// Creates a study `slug` with `run`'s policy, uploads `photographs` and grades it to the end.
pub fn run_study(
    api: &Api,
    team: &Team,
    run: &PolicyRun,
    slug: &str,
    photographs: &[(String, Vec<u8>)],
) -> anyhow::Result<StudyOutcome> {
    let params: Value = serde_json::from_str(run.params).context("policy parameters")?;
    let study = json!({
        "slug": slug,
        "name": format!("Demo photographs under {}", run.name),
        "guideline_key": "dr-screening",
        "guideline_version": "1.0",
        "overlap": 3,
        "policy": run.policy,
        "policy_params": params,
    });
    api.post_json(&team.lead, "/api/v1/projects", &study, 201)?;
    let members = std::iter::once((&team.credentials.senior, "senior"))
        .chain(team.credentials.graders.iter().map(|g| (g, "grader")));
    for (account, role) in members {
        let body = json!({ "username": account.username, "role": role });
        api.post_json(&team.lead, &format!("/api/v1/projects/{slug}/members"), &body, 201)?;
    }

    let mut items = Vec::with_capacity(photographs.len());
    for (index, (name, bytes)) in photographs.iter().enumerate() {
        let item_id = api.upload(&team.lead, slug, name, bytes)?;
        items.push(ScriptedItem {
            item_id,
            name: name.clone(),
            pattern: index % PATTERNS,
        });
    }
    let mut outcome = StudyOutcome {
        slug: slug.to_string(),
        items,
        excluded: None,
        grades: 0,
        arbitrations: 0,
    };

    grade_first_round(api, team, &mut outcome)?;
    adjudicate(api, team, &mut outcome)?;
    settle(api, team, &mut outcome)?;
    Ok(outcome)
}

fn grade(api: &Api, token: &str, slug: &str, item_id: i64, answers: Value, round: i64) -> anyhow::Result<()> {
    let body = json!({ "answers": answers, "comment": format!("round {round}"), "time_spent_ms": 2500 });
    api.post_json(
        token,
        &format!("/api/v1/projects/{slug}/items/{item_id}/grades"),
        &body,
        201,
    )?;
    Ok(())
}

/// Round 0: each grader leases and grades until nothing is left for them.
fn grade_first_round(api: &Api, team: &Team, outcome: &mut StudyOutcome) -> anyhow::Result<()> {
    let slug = outcome.slug.clone();
    for (grader, token) in team.graders.iter().enumerate() {
        loop {
            let response = api.get(token, &format!("/api/v1/projects/{slug}/next"))?;
            if response.status() == 204 {
                break;
            }
            let next = expect_status(response, 200, "next item")?;
            let item_id = next["item_id"].as_i64().context("next item has no id")?;
            grade(
                api,
                token,
                &slug,
                item_id,
                answers(outcome.pattern_of(item_id)?, grader, 0),
                0,
            )?;
            outcome.grades += 1;
        }
    }
    Ok(())
}

/// Adjudication: each grader reviews, discusses and re-grades their open adjudications until
/// none is left.
fn adjudicate(api: &Api, team: &Team, outcome: &mut StudyOutcome) -> anyhow::Result<()> {
    let slug = outcome.slug.clone();
    loop {
        let mut regraded = 0;
        for (grader, token) in team.graders.iter().enumerate() {
            let mine = api.get_json(token, &format!("/api/v1/projects/{slug}/adjudications/mine"))?;
            for entry in mine["items"].as_array().context("adjudication list")? {
                if entry["regraded"] == true {
                    continue;
                }
                let item_id = entry["item_id"].as_i64().context("item id")?;
                let round = entry["round"].as_i64().context("round")?;
                let review = api.get_json(token, &format!("/api/v1/projects/{slug}/items/{item_id}/review"))?;
                ensure!(
                    review["reviewed_round"] == round - 1,
                    "item {item_id}: the review shows round {}",
                    review["reviewed_round"]
                );
                let shown = review["grades"].as_array().map_or(0, Vec::len);
                ensure!(
                    shown == 3,
                    "item {item_id}: the review shows {shown} grades of round {}, not 3",
                    round - 1
                );
                let message = json!({ "body": format!("grader {grader} reconsidered round {}", round - 1) });
                api.post_json(
                    token,
                    &format!("/api/v1/projects/{slug}/items/{item_id}/messages"),
                    &message,
                    201,
                )?;
                grade(
                    api,
                    token,
                    &slug,
                    item_id,
                    answers(outcome.pattern_of(item_id)?, grader, round),
                    round,
                )?;
                outcome.grades += 1;
                regraded += 1;
            }
        }
        if regraded == 0 {
            return Ok(());
        }
    }
}

/// The lead excludes the first item waiting for arbitration; the senior arbitrates the rest
/// with the answers of the first grade shown.
fn settle(api: &Api, team: &Team, outcome: &mut StudyOutcome) -> anyhow::Result<()> {
    let slug = outcome.slug.clone();
    let queue = api.get_json(&team.senior, &format!("/api/v1/projects/{slug}/arbitration"))?;
    let waiting: Vec<i64> = queue["items"]
        .as_array()
        .context("arbitration queue")?
        .iter()
        .filter_map(|e| e["item_id"].as_i64())
        .collect();
    outcome.excluded = waiting.first().copied();
    if let Some(item_id) = outcome.excluded {
        let body = json!({ "reason": "image of the wrong eye" });
        api.post_json(
            &team.lead,
            &format!("/api/v1/projects/{slug}/items/{item_id}/exclude"),
            &body,
            200,
        )?;
    }
    for &item_id in waiting.iter().skip(1) {
        let review = api.get_json(&team.senior, &format!("/api/v1/projects/{slug}/items/{item_id}/review"))?;
        let body = json!({ "answers": review["grades"][0]["answers"], "reason": "decided on the review" });
        api.post_json(
            &team.senior,
            &format!("/api/v1/projects/{slug}/items/{item_id}/arbitration"),
            &body,
            201,
        )?;
        outcome.arbitrations += 1;
    }
    Ok(())
}
