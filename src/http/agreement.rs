//! Agreement statistics of a study: the JSON API and the pages with SVG figures.
//!
//! - `GET /api/v1/projects/{slug}/agreement?field=NAME[&round=0][&bootstrap=1000][&seed=42]`
//!   and the page `GET /studies/{slug}/agreement`: leads, seniors and admins. Graders get 403,
//!   because the report shows every grader's answers.
//! - `GET /api/v1/projects/{slug}/scorecard` and the page `GET /studies/{slug}/scorecard`:
//!   graders, their own numbers on resolved items only.
//!
//! The store loads the grades, `domain::agreement_report` computes, and this module parses
//! the query and renders.

mod pages;

use std::collections::HashMap;

use actix_web::{web, HttpResponse};

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::agreement::DEFAULT_REPLICATES;
use crate::domain::agreement_report::{
    field_report, scorecard, single_choice_fields, FieldReport, FieldScale, ReportOptions, Scorecard,
};
use crate::domain::guideline::Guideline;
use crate::domain::roles::Role;
use crate::store::models::ProjectRow;
use crate::store::{agreement as store, guidelines, Conn};

pub use pages::{agreement_page_handler, scorecard_page};

/// Largest bootstrap replicate count a request may ask for.
pub const MAX_REPLICATES: usize = 10_000;
/// Bootstrap seed when the request names none.
pub const DEFAULT_SEED: u64 = 42;

/// Parameters of an agreement request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgreementQuery {
    field: Option<String>,
    options: ReportOptions,
}

fn invalid(parameter: &str, message: String) -> AppError {
    AppError::Unprocessable {
        field: parameter.to_string(),
        message,
        allowed: vec![],
    }
}

/// Reads `field`, `round`, `bootstrap` and `seed`; other parameters are ignored.
fn parse_query(query: &HashMap<String, String>) -> Result<AgreementQuery, AppError> {
    let round = match query.get("round") {
        None => 0,
        Some(text) => text.parse::<i32>().ok().filter(|round| *round >= 0).ok_or_else(|| {
            invalid(
                "round",
                format!("round {text:?} is invalid: give a round number, 0 or more"),
            )
        })?,
    };
    let replicates = match query.get("bootstrap") {
        None => DEFAULT_REPLICATES,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|count| *count <= MAX_REPLICATES)
            .ok_or_else(|| {
                invalid(
                    "bootstrap",
                    format!(
                        "bootstrap {text:?} is invalid: give 0 to {MAX_REPLICATES} replicates (0 skips the intervals)"
                    ),
                )
            })?,
    };
    let seed = match query.get("seed") {
        None => DEFAULT_SEED,
        Some(text) => text.parse::<u64>().map_err(|_| {
            invalid(
                "seed",
                format!("seed {text:?} is invalid: give a whole number from 0 to {}", u64::MAX),
            )
        })?,
    };
    Ok(AgreementQuery {
        field: query.get("field").filter(|name| !name.is_empty()).cloned(),
        options: ReportOptions {
            round,
            replicates,
            seed,
        },
    })
}

/// Loads the study and its guideline for a lead, a senior or an admin. Fails with 403 for graders.
fn reviewer_context(
    conn: &mut Conn,
    user: &CurrentUser,
    slug: &str,
) -> Result<(ProjectRow, Guideline, Option<Role>), AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    let allowed = user.is_admin || role.is_some_and(Role::sees_all_grades);
    if !allowed {
        return Err(AppError::Forbidden(format!(
            "only leads and seniors of study {slug:?} see its agreement statistics; graders see their own numbers at /studies/{slug}/scorecard"
        )));
    }
    let guideline = load_guideline(conn, &project)?;
    Ok((project, guideline, role))
}

fn load_guideline(conn: &mut Conn, project: &ProjectRow) -> Result<Guideline, AppError> {
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?.ok_or_else(|| {
        AppError::internal(format!(
            "guideline {} of study {} is missing",
            project.guideline_id, project.slug
        ))
    })?;
    Ok(guideline)
}

/// Returns the scale of the requested field. Fails with 422, listing the single-choice
/// fields, when it is missing, unknown or not single-choice.
fn field_scale(guideline: &Guideline, requested: Option<&str>) -> Result<FieldScale, AppError> {
    let allowed: Vec<String> = single_choice_fields(guideline)
        .iter()
        .map(|field| field.name.clone())
        .collect();
    let scale = requested
        .and_then(|name| guideline.field(name))
        .and_then(FieldScale::new);
    scale.ok_or_else(|| {
        let problem = match requested {
            None => "the field parameter is missing".to_string(),
            Some(name) => format!("field {name:?} is not a single-choice field of this study's guideline"),
        };
        AppError::Unprocessable {
            field: "field".into(),
            message: format!("{problem}; agreement is computed for one of: {}", allowed.join(", ")),
            allowed,
        }
    })
}

/// `GET /api/v1/projects/{slug}/agreement`: the agreement report of one field as JSON.
pub async fn api_agreement(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let query = parse_query(&query)?;
    let db = state.db.clone();
    let slug = slug.into_inner();
    let report = web::block(move || -> Result<FieldReport, AppError> {
        let mut conn = db.conn()?;
        let (project, guideline, _) = reviewer_context(&mut conn, &user, &slug)?;
        let scale = field_scale(&guideline, query.field.as_deref())?;
        let study = store::load_study_ratings(&mut conn, project.id)?;
        Ok(field_report(&study, &scale, &query.options))
    })
    .await??;
    Ok(HttpResponse::Ok().json(report))
}

/// Computes the caller's scorecard, with the study and the caller's pseudonym. Fails with 403
/// for anyone who does not grade in the study.
fn own_scorecard(conn: &mut Conn, user: &CurrentUser, slug: &str) -> Result<(ProjectRow, String, Scorecard), AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    if role != Some(Role::Grader) {
        return Err(AppError::Forbidden(format!(
            "only graders of study {slug:?} have a scorecard; leads and seniors see /studies/{slug}/agreement"
        )));
    }
    let guideline = load_guideline(conn, &project)?;
    let pseudonym = store::pseudonym_of(conn, project.id, user.id)?.unwrap_or_default();
    let grades = store::load_own_grades(conn, project.id, user.id)?;
    Ok((project, pseudonym, scorecard(&guideline, &grades)))
}

/// `GET /api/v1/projects/{slug}/scorecard`: the caller's own agreement with the reference
/// standard on resolved items.
pub async fn api_scorecard(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let (_, pseudonym, card) = web::block(move || {
        let mut conn = db.conn()?;
        own_scorecard(&mut conn, &user, &slug)
    })
    .await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "pseudonym": pseudonym,
        "n_grades": card.n_grades,
        "fields": card.fields,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn query_defaults() {
        let parsed = parse_query(&query(&[("field", "dr_severity")])).expect("valid");
        assert_eq!(parsed.field.as_deref(), Some("dr_severity"));
        assert_eq!(
            parsed.options,
            ReportOptions {
                round: 0,
                replicates: DEFAULT_REPLICATES,
                seed: DEFAULT_SEED
            }
        );
        let parsed = parse_query(&query(&[("round", "2"), ("bootstrap", "0"), ("seed", "7")])).expect("valid");
        assert_eq!(
            parsed.options,
            ReportOptions {
                round: 2,
                replicates: 0,
                seed: 7
            }
        );
    }

    #[test]
    fn query_rejects_bad_numbers() {
        for (parameter, value) in [("round", "-1"), ("round", "x"), ("bootstrap", "10001"), ("seed", "-3")] {
            let error = parse_query(&query(&[(parameter, value)])).expect_err(parameter);
            assert!(
                matches!(&error, AppError::Unprocessable { field, .. } if field == parameter),
                "{error}"
            );
        }
    }
}
