//! `GET /api/v1/projects/{slug}/aggregate?field=F&method=majority|dawid-skene[&iterations=N]`:
//! one suggested label per item of a study for one single-choice field, for seniors, leads and
//! admins (graders get 403, because the result is built from every grader's answers).
//!
//! The input is the same as the Dawid-Skene advice of the review: the first-round answers of
//! the items whose first round closed, so nothing under blinding is used. The computation is
//! `domain::aggregate::study::aggregate_field`, which the advice calls too. Dawid-Skene stops
//! when the score gain falls below 1e-5, after at most 100 iterations, unless `iterations`
//! asks for exactly N.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::aggregate::study::{aggregate_field, FieldAggregate, FieldEstimate, FieldMethod, MAX_ITERATIONS};
use crate::domain::aggregate::Stopping;
use crate::domain::guideline::Guideline;
use crate::domain::workflow::permissions::may_oversee;
use crate::store::workflow::review::{advice_ratings, distinct_pseudonyms, item_names};
use crate::store::{guidelines, Conn};

/// Note returned with every aggregate.
const AGGREGATE_NOTE: &str =
    "computed from the first-round grades of items whose first round closed; a suggestion for \
                              the reviewer, not a resolution";

fn invalid(parameter: &str, message: String, allowed: Vec<String>) -> AppError {
    AppError::Unprocessable {
        field: parameter.to_string(),
        message,
        allowed,
    }
}

/// Reads `method` and `iterations`; the field is checked against the guideline later.
fn parse_method(query: &HashMap<String, String>) -> Result<FieldMethod, AppError> {
    let allowed = vec!["majority".to_string(), "dawid-skene".to_string()];
    let method = query.get("method").ok_or_else(|| {
        invalid(
            "method",
            "method is missing: give method=majority or method=dawid-skene".into(),
            allowed.clone(),
        )
    })?;
    let iterations = match query.get("iterations") {
        None => None,
        Some(text) => Some(
            text.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "iterations",
                        format!("iterations {text:?} is invalid: give a whole number from 1 to {MAX_ITERATIONS}"),
                        vec![],
                    )
                })?,
        ),
    };
    match method.as_str() {
        "majority" if iterations.is_some() => Err(invalid(
            "iterations",
            "iterations applies only to method=dawid-skene: remove it or change the method".into(),
            vec![],
        )),
        "majority" => Ok(FieldMethod::Majority),
        "dawid-skene" => Ok(FieldMethod::DawidSkene(match iterations {
            Some(iterations) => Stopping::Fixed { iterations },
            None => Stopping::default(),
        })),
        other => Err(invalid(
            "method",
            format!("method {other:?} is unknown: use majority or dawid-skene"),
            allowed,
        )),
    }
}

/// Checks that `query` names a single-choice field of the guideline and returns its name.
fn parse_field<'a>(query: &'a HashMap<String, String>, guideline: &Guideline) -> Result<&'a str, AppError> {
    let allowed: Vec<String> = guideline
        .fields
        .iter()
        .filter(|f| f.kind.is_single_choice())
        .map(|f| f.name.clone())
        .collect();
    let name = query.get("field").ok_or_else(|| {
        invalid(
            "field",
            "field is missing: name a single-choice field of the guideline".into(),
            allowed.clone(),
        )
    })?;
    match guideline.field(name) {
        Some(field) if field.kind.is_single_choice() => Ok(name),
        Some(_) => Err(invalid(
            "field",
            format!("field {name:?} is not single-choice, so it has no label to aggregate: name a single-choice field"),
            allowed,
        )),
        None => Err(invalid(
            "field",
            format!(
                "field {name:?} is not in guideline {}: name one of its single-choice fields",
                guideline.key
            ),
            allowed,
        )),
    }
}

/// An object keyed by `keys` in their order.
fn keyed(keys: &[String], values: impl IntoIterator<Item = Value>) -> Value {
    Value::Object(keys.iter().cloned().zip(values).collect::<Map<String, Value>>())
}

/// Builds the response body; items are named by their image name and graders by pseudonym.
fn aggregate_json(
    result: &FieldAggregate,
    field: &str,
    item_names: &HashMap<i64, String>,
    graders: &[String],
) -> Value {
    let items: Vec<String> = result
        .items
        .iter()
        .map(|id| item_names.get(id).cloned().unwrap_or_else(|| format!("item {id}")))
        .collect();
    let labels = keyed(&items, (0..items.len()).map(|index| json!(result.label_text(index))));
    let mut body = json!({
        "field": field,
        "items": result.items.len(),
        "graders": result.raters.len(),
        "categories": result.options,
        "labels": labels,
        "note": AGGREGATE_NOTE,
    });
    match &result.estimate {
        FieldEstimate::Majority { rater_agreement, .. } => {
            body["method"] = json!("majority");
            body["rater_agreement"] = keyed(graders, rater_agreement.iter().map(|share| json!(share)));
        }
        FieldEstimate::DawidSkene(estimate) => {
            let modeled: Vec<String> = estimate
                .categories_modeled
                .iter()
                .map(|&category| result.options[category].clone())
                .collect();
            body["method"] = json!("dawid-skene");
            body["categories_modeled"] = json!(modeled);
            body["priors"] = keyed(&modeled, estimate.priors.iter().map(|prior| json!(prior)));
            body["rater_accuracy"] = keyed(graders, estimate.rater_accuracy.iter().map(|accuracy| json!(accuracy)));
            body["confusion"] = keyed(graders, estimate.confusion.iter().map(|matrix| json!(matrix)));
            body["iterations_run"] = json!(estimate.iterations_run);
        }
    }
    body
}

fn load_aggregate(
    conn: &mut Conn,
    user: &CurrentUser,
    slug: &str,
    query: &HashMap<String, String>,
) -> Result<Value, AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    if !may_oversee(role, user.is_admin) {
        return Err(AppError::Forbidden(format!(
            "only seniors and leads of study {slug:?} see aggregate labels, because they are built from every grader's answers"
        )));
    }
    let method = parse_method(query)?;
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?.ok_or_else(|| {
        AppError::internal(format!(
            "guideline {} of study {} is missing",
            project.guideline_id, project.slug
        ))
    })?;
    let name = parse_field(query, &guideline)?;
    let field = guideline
        .field(name)
        .ok_or_else(|| AppError::internal(format!("field {name} vanished from the guideline")))?;

    let mut ratings = advice_ratings(conn, project.id, &guideline)?;
    let field_ratings = ratings.remove(name).unwrap_or_default();
    let result = aggregate_field(field, &field_ratings, method)
        .ok_or_else(|| AppError::internal(format!("field {name} is single-choice but has no aggregate")))?;
    let graders = distinct_pseudonyms(conn, project.id, &result.raters)?;
    let names = item_names(conn, project.id)?;
    Ok(aggregate_json(&result, name, &names, &graders))
}

/// `GET /api/v1/projects/{slug}/aggregate`: suggested labels of one field, with the
/// Dawid-Skene priors, grader accuracies and confusion matrices when asked for.
pub async fn api_aggregate(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let query = query.into_inner();
    let body = web::block(move || -> Result<Value, AppError> {
        let mut conn = db.conn()?;
        load_aggregate(&mut conn, &user, &slug, &query)
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}
