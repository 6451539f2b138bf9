//! Study slugs and usernames: the short identifiers that appear in URLs and files.

/// Checks a study slug: 2 to 64 lowercase letters, digits and hyphens, starting with a
/// letter or digit. Returns the reason when it is not valid.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let valid_chars = slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if slug.len() < 2 || slug.len() > 64 || !valid_chars || slug.starts_with('-') {
        return Err(format!(
            "slug {slug:?} is invalid: use 2 to 64 lowercase letters, digits and hyphens, not starting with a hyphen"
        ));
    }
    Ok(())
}

/// Checks a username: 1 to 64 letters, digits, '.', '_' or '-'.
pub fn check_username(username: &str) -> Result<(), String> {
    let valid_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if username.is_empty() || username.len() > 64 || !valid_chars {
        return Err(format!(
            "username {username:?} is invalid: use 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        assert!(check_slug("demo-study-1").is_ok());
        assert!(check_slug("Demo").is_err());
        assert!(check_slug("-x").is_err());
        assert!(check_slug("a").is_err());
        assert!(check_slug("a/b").is_err());
    }

    #[test]
    fn username_rules() {
        assert!(check_username("dr.smith").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
    }
}
