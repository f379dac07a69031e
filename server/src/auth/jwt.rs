//! JSON Web Tokens from the operator's identity provider: signature checked against a
//! JWKS file (reloaded when it changes), then issuer, audience, expiry and not-before.
//! The principal is the token's `sub`; its scopes come from a configured claim, either
//! an OAuth2 space-separated string (`scope`) or a list (`scp`, `permissions`, or a
//! dotted path such as `realm_access.roles`).
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES*): a server that held an HMAC
//! secret could mint tokens, and `none` is never a signature. A key whose JWK names an
//! algorithm is used only with that algorithm.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{Principal, Scope};
use crate::watch::Watched;

/// The algorithms a token may be signed with.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// What a JWT must satisfy, from `[auth]`.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The identity provider's public keys.
    pub jwks_file: PathBuf,
    /// The `iss` a token must carry.
    pub issuer: String,
    /// The `aud` a token must carry (one of, when it is a list).
    pub audience: String,
    /// Where the scopes are: a claim name, or a dotted path into nested claims.
    pub scopes_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// How often the JWKS file is checked for a change (zero: never).
    pub reload: Duration,
}

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    /// The algorithm the JWK pins, if it names one.
    alg: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

/// The keys of the JWKS file.
struct KeySet(Vec<Key>);

/// Verifies JWTs.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: Arc<Watched<KeySet>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .field("keys", &self.keys.get().0.len())
            .finish()
    }
}

/// Why a token was refused: for the debug log only, never for the caller.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not three base64 parts with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A symmetric algorithm, `none`, or another not accepted.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No key of the set fits the token's algorithm and `kid`.
    #[error("no key in the JWKS matches (kid {0:?})")]
    NoKey(Option<String>),
    /// Bad signature, or a claim that does not hold (expired, wrong issuer, …).
    #[error("{0}")]
    Invalid(String),
}

impl JwtVerifier {
    /// Reads the JWKS now (an unreadable or empty set stops the start) and keeps it current.
    pub fn start(settings: JwtSettings) -> Result<JwtVerifier, String> {
        let path = settings.jwks_file.clone();
        let keys = Watched::start(
            "auth.jwks_file",
            vec![path.clone()],
            settings.reload,
            move || read_jwks(&path),
        )?;
        Ok(JwtVerifier { settings, keys })
    }

    /// The principal a valid token names.
    pub fn verify(&self, token: &str) -> Result<Principal, JwtError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(JwtError::Algorithm(header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway.as_secs();
        let keys = self.keys.get();
        let wanted = family(header.alg);
        let candidates = keys.0.iter().filter(|k| {
            k.family == wanted
                && k.alg.is_none_or(|a| a == header.alg)
                && (header.kid.is_none() || k.kid == header.kid)
        });
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation) {
                Ok(data) => return principal(&data.claims, &self.settings.scopes_claim),
                // A wrong key among several without a kid: try the next one.
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                    last = Some(e)
                }
                Err(e) => return Err(JwtError::Invalid(e.to_string())),
            }
        }
        Err(match last {
            Some(e) => JwtError::Invalid(e.to_string()),
            None => JwtError::NoKey(header.kid),
        })
    }
}

/// The kind of public key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        _ => Family::Rsa,
    }
}

/// The principal of verified claims.
fn principal(claims: &serde_json::Value, scopes_claim: &str) -> Result<Principal, JwtError> {
    let name = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| JwtError::Invalid("`sub` is not a non-empty string".into()))?;
    let mut at = Some(claims);
    for part in scopes_claim.split('.') {
        at = at.and_then(|v| v.get(part));
    }
    let names: Vec<&str> = match at {
        Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    Ok(Principal {
        name: name.to_string(),
        scopes: names.into_iter().filter_map(Scope::parse).collect(),
    })
}

/// The usable keys of a JWKS file. Keys of a kind that cannot verify a token here (an
/// HMAC secret, an unknown curve) are skipped with a warning, not fatal: providers
/// publish sets with several kinds.
fn read_jwks(path: &std::path::Path) -> Result<KeySet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("auth.jwks_file {}: {e}", path.display()))?;
    let set: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("auth.jwks_file {} is not JSON: {e}", path.display()))?;
    let Some(entries) = set.get("keys").and_then(|k| k.as_array()) else {
        return Err(format!(
            "auth.jwks_file {} has no `keys` list",
            path.display()
        ));
    };
    let mut keys = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match usable(entry) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(key = i, %why, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "auth.jwks_file {} holds no RSA or EC public key",
            path.display()
        ));
    }
    Ok(KeySet(keys))
}

fn usable(entry: &serde_json::Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(
            a.to_string()
                .parse::<Algorithm>()
                .ok()
                .filter(|a| ALGORITHMS.contains(a))
                .ok_or_else(|| format!("algorithm {a} is not accepted"))?,
        ),
    };
    if matches!(
        jwk.common.public_key_use,
        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
    ) {
        return Err("an encryption key (`use: enc`) does not verify signatures".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are not accepted".into()),
        AlgorithmParameters::OctetKeyPair(_) => return Err("EdDSA keys are not accepted".into()),
    };
    if alg.is_some_and(|a| self::family(a) != family) {
        return Err("the key's `alg` does not fit its key type".into());
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        family,
        key,
    })
}
