//! The one error type of the HTTP boundary and how each case maps to a status.
//!
//! Bad input is 400 or 422 with the field named, a missing or invalid login 401, a wrong role
//! 403, an unknown object 404, a conflict 409, a too-large body 413. Only real faults answer
//! 500; they are logged once here with their cause, and the client sees a generic message.
//! Every body is `{"error": {"code": "...", "message": "..."}}` with a stable code clients
//! can match on.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { field: String, message: String, allowed: Vec<String> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(error: impl std::fmt::Display) -> AppError {
        AppError::Internal(error.to_string())
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::Unprocessable { .. } => "invalid_field",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        AppError::Internal(error.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        AppError::Internal(error.to_string())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        AppError::Internal(error.to_string())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed with an internal error");
                "the server failed to handle the request; the error is in the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": self.code(), "message": message } });
        if let AppError::Unprocessable { field, allowed, .. } = self {
            body["error"]["field"] = json!(field);
            body["error"]["allowed"] = json!(allowed);
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// Maps actix's JSON body errors (syntax, wrong types, too large) to our error shape.
pub fn json_error_handler(error: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let app_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => AppError::BadRequest {
            code: "payload_too_large",
            message: format!("{error}; send a smaller request"),
        },
        JsonPayloadError::ContentType => AppError::BadRequest {
            code: "bad_content_type",
            message: "the body must be JSON with Content-Type: application/json".into(),
        },
        _ => AppError::BadRequest { code: "invalid_json", message: format!("the JSON body is invalid: {error}") },
    };
    actix_web::error::InternalError::from_response(error, app_error.error_response()).into()
}
