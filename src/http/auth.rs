//! Who is calling: the session token from the `Authorization: Bearer` header or the session
//! cookie, checked on every request against the signing key and the user's current row (a
//! disabled user's tokens stop working at once).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};

use super::error::AppError;
use super::AppState;
use crate::auth::TOKEN_LIFETIME_SECS;
use crate::store::users;

/// Name of the session cookie set at login.
pub const SESSION_COOKIE: &str = "quorum_session";

/// The logged-in user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
}

/// The token of a request: the bearer header wins over the cookie.
pub fn request_token(req: &HttpRequest) -> Option<String> {
    if let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = header.to_str().ok()?;
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
        return Some(token.trim().to_string());
    }
    req.cookie(SESSION_COOKIE).map(|cookie| cookie.value().to_string())
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<CurrentUser, AppError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = request_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            let token = token.ok_or_else(|| AppError::Unauthorized("log in first: no session token was sent".into()))?;
            let user_id = state
                .keys
                .verify(&token)
                .map_err(|_| AppError::Unauthorized("the session token is invalid or expired; log in again".into()))?;
            let user = state.db.read(move |conn| users::find_by_id(conn, user_id)).await?;
            match user {
                Some(user) if !user.disabled => Ok(CurrentUser {
                    id: user.id,
                    username: user.username,
                    display_name: user.display_name,
                    is_admin: user.is_admin,
                }),
                _ => Err(AppError::Unauthorized("the session token is invalid or expired; log in again".into())),
            }
        })
    }
}

/// The HttpOnly, SameSite=Strict cookie that carries a session token.
pub fn session_cookie(token: &str) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(TOKEN_LIFETIME_SECS))
        .finish()
}

/// A cookie that clears the session cookie.
pub fn cleared_session_cookie() -> Cookie<'static> {
    let mut cookie = session_cookie("");
    cookie.make_removal();
    cookie
}
