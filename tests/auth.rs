//! Login and token checks through the real server.

mod common;

use base64::Engine;
use common::{TestApp, TestBackend};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const PASSWORD: &str = "a long enough password";

fn app_with_user() -> (TestApp, i64) {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let id = app.create_user("alice", PASSWORD, false);
    (app, id)
}

fn signing_key(app: &TestApp) -> Vec<u8> {
    std::fs::read(app.settings.jwt_key_path()).expect("key file")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn status_with(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/projects", token).status().as_u16()
}

#[test]
fn login_returns_token_and_cookie() {
    let (app, _) = app_with_user();
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .expect("request");
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie header")
        .to_string();
    assert!(cookie.starts_with("quorum_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let body: serde_json::Value = response.json().expect("json");
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["expires_at"].as_i64().is_some_and(|exp| exp > now_secs()));
}

#[test]
fn valid_token_is_accepted() {
    let (app, _) = app_with_user();
    let token = app.login("alice", PASSWORD);
    assert_eq!(status_with(&app, &token), 200);
}

#[test]
fn session_cookie_is_accepted() {
    let (app, _) = app_with_user();
    let token = app.login("alice", PASSWORD);
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("quorum_session={token}"))
        .send()
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let (app, _) = app_with_user();
    let attempt = |username: &str, password: &str| {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .expect("request");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().expect("json");
        (status, body["error"]["message"].as_str().unwrap_or_default().to_string())
    };
    let wrong_password = attempt("alice", "not the password");
    let unknown_user = attempt("nobody", PASSWORD);
    assert_eq!(wrong_password.0, 401);
    assert_eq!(unknown_user.0, 401);
    assert_eq!(wrong_password.1, unknown_user.1);
    assert_eq!(wrong_password.1, "invalid username or password");
}

#[test]
fn missing_token_is_401() {
    let (app, _) = app_with_user();
    let response = app.client.get(app.url("/api/v1/projects")).send().expect("request");
    assert_eq!(response.status(), 401);
}

#[test]
fn alg_none_token_is_401() {
    let (app, id) = app_with_user();
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(format!(r#"{{"sub":"{id}","exp":{},"iat":{}}}"#, now_secs() + 3600, now_secs()).as_bytes());
    assert_eq!(status_with(&app, &format!("{header}.{payload}.")), 401);
}

#[test]
fn other_algorithm_token_is_401() {
    let (app, id) = app_with_user();
    let claims = serde_json::json!({ "sub": id.to_string(), "exp": now_secs() + 3600, "iat": now_secs() });
    let key = EncodingKey::from_secret(&signing_key(&app)).expect("key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).expect("sign");
    assert_eq!(status_with(&app, &token), 401);
}

#[test]
fn token_without_exp_is_401() {
    let (app, id) = app_with_user();
    let claims = serde_json::json!({ "sub": id.to_string(), "iat": now_secs() });
    let key = EncodingKey::from_secret(&signing_key(&app)).expect("key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign");
    assert_eq!(status_with(&app, &token), 401);
}

#[test]
fn expired_token_is_401() {
    let (app, id) = app_with_user();
    let claims = serde_json::json!({ "sub": id.to_string(), "exp": now_secs() - 5, "iat": now_secs() - 100 });
    let key = EncodingKey::from_secret(&signing_key(&app)).expect("key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign");
    assert_eq!(status_with(&app, &token), 401);
}

#[test]
fn changed_payload_is_401() {
    let (app, id) = app_with_user();
    let other = app.create_user("mallory", PASSWORD, true);
    let token = app.login("alice", PASSWORD);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let forged_payload = b64(format!(r#"{{"sub":"{other}","exp":{},"iat":{}}}"#, now_secs() + 3600, now_secs()).as_bytes());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_ne!(id, other);
    assert_eq!(status_with(&app, &forged), 401);
}

#[test]
fn token_of_disabled_user_is_401() {
    let (app, id) = app_with_user();
    let token = app.login("alice", PASSWORD);
    {
        use diesel::prelude::*;
        use quorum::store::schema::users;
        let mut conn = app.db.conn().expect("connection");
        diesel::update(users::table.find(id)).set(users::disabled.eq(true)).execute(&mut conn).expect("disable");
    }
    assert_eq!(status_with(&app, &token), 401);
}

#[test]
fn signing_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (app, _) = app_with_user();
    let mode = std::fs::metadata(app.settings.jwt_key_path()).expect("key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
