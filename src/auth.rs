//! Passwords and session tokens.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's defaults, a random salt per
//! hash). Sessions are JWTs signed with HS256 by a 64-byte key that is generated on first
//! start and stored in the data folder with mode 0600; there is no built-in key. Only HS256
//! is accepted when verifying, and a token must carry `exp` and `sub`, so `alg: none`,
//! another algorithm, a missing expiry or an edited payload all fail verification.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// How long a login token stays valid.
pub const TOKEN_LIFETIME_SECS: i64 = 12 * 60 * 60;

const KEY_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("signing key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("could not sign the token: {0}")]
    Sign(String),
    #[error("the token is invalid or expired")]
    InvalidToken,
}

/// Hashes a password with argon2id and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a stored hash. A malformed hash counts as a mismatch.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, checked against when a username does not exist so that a
/// failed login takes the same time whether or not the user exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_password()).unwrap_or_default())
}

/// A random password of 20 characters from an alphabet without look-alike characters.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The claims of a session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
}

/// Signs and verifies session tokens with the server's key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Reads the signing key at `path`, creating it with mode 0600 when it does not exist.
    ///
    /// Fails when the file cannot be read or written, or holds fewer than 32 bytes.
    pub fn load_or_create(path: &Path) -> Result<TokenKeys, AuthError> {
        let key_error = |reason: String| AuthError::KeyFile { path: path.display().to_string(), reason };
        let secret = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = vec![0u8; KEY_BYTES];
                rand::rng().fill_bytes(&mut secret);
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut file) => {
                        file.write_all(&secret).map_err(|e| key_error(e.to_string()))?;
                        file.sync_all().map_err(|e| key_error(e.to_string()))?;
                        secret
                    }
                    // Another process created it between our read and open: use theirs.
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(path).map_err(|e| key_error(e.to_string()))?
                    }
                    Err(error) => return Err(key_error(error.to_string())),
                }
            }
            Err(error) => return Err(key_error(error.to_string())),
        };
        if secret.len() < 32 {
            return Err(key_error(format!(
                "holds {} bytes but a key needs at least 32; delete the file to generate a new key (this logs everyone out)",
                secret.len()
            )));
        }
        Self::from_secret(&secret)
    }

    /// Builds the keys from raw secret bytes.
    pub fn from_secret(secret: &[u8]) -> Result<TokenKeys, AuthError> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| AuthError::Sign(e.to_string()))?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(TokenKeys { encoding, decoding })
    }

    /// Issues a token for `user_id` valid for [`TOKEN_LIFETIME_SECS`] from `now_secs`.
    pub fn issue(&self, user_id: i64, now_secs: i64) -> Result<(String, i64), AuthError> {
        let exp = now_secs + TOKEN_LIFETIME_SECS;
        let claims = Claims { sub: user_id.to_string(), exp, iat: now_secs };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok((token, exp))
    }

    /// Verifies a token and returns its user id.
    ///
    /// Fails with [`AuthError::InvalidToken`] for any token not signed by us with HS256, one
    /// without `exp` or `sub`, or one that has expired (no leeway).
    pub fn verify(&self, token: &str) -> Result<i64, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        validation.validate_exp = true;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::InvalidToken)?;
        data.claims.sub.parse().map_err(|_| AuthError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn token_round_trip() {
        let keys = TokenKeys::from_secret(&[7u8; 64]).expect("keys");
        let now = 1_900_000_000;
        let (token, exp) = keys.issue(42, now).expect("token");
        assert_eq!(exp, now + TOKEN_LIFETIME_SECS);
        // The token's expiry lies in the future of the real clock, so it verifies.
        assert_eq!(keys.verify(&token).expect("valid"), 42);
    }

    #[test]
    fn token_from_other_key_rejected() {
        let keys = TokenKeys::from_secret(&[7u8; 64]).expect("keys");
        let other = TokenKeys::from_secret(&[8u8; 64]).expect("keys");
        let (token, _) = other.issue(42, 1_900_000_000).expect("token");
        assert!(keys.verify(&token).is_err());
    }
}
