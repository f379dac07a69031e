//! API keys: the records, and how a key is made and recognised. A key is `mk_` and 64
//! hex digits (244 random bits from two v4 UUIDs, which come from the OS's generator);
//! the registry keeps only its SHA-256, so a stolen database holds no usable key.
//!
//! The registry stores scopes as names and does not know what they allow: the server
//! owns that table (`server/src/auth/scopes.rs`) and checks names before creating a key.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::check_name;
use crate::{RegistryError, Result};

/// What every key starts with, so a leaked one is easy to recognise (and to scan for).
pub const KEY_PREFIX: &str = "mk_";

/// One API key, without the key itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    /// The principal's name: recorded as the actor of everything done with the key.
    pub name: String,
    /// The scopes the key grants.
    pub scopes: Vec<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// After this the key is refused.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; refused from then on.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Neither expired nor revoked at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A new random key.
pub(crate) fn generate() -> String {
    format!(
        "{KEY_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The stored form of a key (its SHA-256, hex), also what servers cache it under.
pub fn fingerprint(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Checks a new key's name and scopes.
pub(crate) fn check_new(name: &str, scopes: &[String]) -> Result<()> {
    check_name("name", name)?;
    if scopes.is_empty() {
        return Err(RegistryError::invalid(
            "scopes",
            "a key needs at least one scope",
        ));
    }
    for (i, scope) in scopes.iter().enumerate() {
        let ok = !scope.is_empty()
            && scope.len() <= 64
            && scope
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == ':' || c == '_');
        if !ok {
            return Err(RegistryError::invalid(
                format!("scopes[{i}]"),
                "a scope is 1-64 of a-z, ':' and '_'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_eq!(fingerprint(&a), fingerprint(&a));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert!(!fingerprint(&a).contains(&a[3..]));
    }

    #[test]
    fn names_and_scopes_are_checked() {
        assert!(check_new("ci-bot", &["infer".into()]).is_ok());
        assert!(check_new("ci-bot", &[]).is_err());
        assert!(check_new("../x", &["infer".into()]).is_err());
        assert!(check_new("ci-bot", &["in fer".into()]).is_err());
    }
}
