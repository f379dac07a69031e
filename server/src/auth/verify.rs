//! Credentials to principals. API keys are looked up in the registry by their hash and
//! trusted for `[auth] key_cache_secs` (so a revocation reaches every replica within
//! that); expiry is checked on every call. When the registry cannot be reached, a key
//! seen before keeps working; an unseen one is refused as UNAVAILABLE.
//!
//! The refusal never says whether a key exists, and no credential is ever logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mercator_registry::{ApiKey, Registry};
use tonic::Status;

use super::{Principal, Scope};

/// Most keys held in the cache; past this it starts again (keys are few, tokens may not be).
const CACHE_LIMIT: usize = 10_000;

/// Turns credentials into principals.
#[derive(Debug)]
pub struct Verifier {
    registry: Registry,
    ttl: Duration,
    /// Key hash → when it was read, and the key.
    cache: Mutex<HashMap<String, (Instant, ApiKey)>>,
}

impl Verifier {
    /// A verifier over `registry`'s keys, trusting a lookup for `ttl`.
    pub fn new(registry: Registry, ttl: Duration) -> Verifier {
        Verifier {
            registry,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of an `authorization` header value.
    pub async fn principal(&self, authorization: Option<&[u8]>) -> Result<Principal, Status> {
        let Some(header) = authorization else {
            return Err(Status::unauthenticated(
                "this call needs a credential: send `authorization: Bearer <key>`",
            ));
        };
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header must be `Bearer <key>`")
            })?;
        let key = self.key(token).await?;
        match key {
            Some(key) if key.is_active(chrono::Utc::now()) => Ok(Principal {
                name: key.name.clone(),
                scopes: key.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            }),
            _ => Err(refused()),
        }
    }

    async fn key(&self, token: &str) -> Result<Option<ApiKey>, Status> {
        let hash = mercator_registry::keys::fingerprint(token);
        let cached = self.cached(&hash);
        if let Some((read, key)) = &cached
            && read.elapsed() < self.ttl
        {
            return Ok(Some(key.clone()));
        }
        match self.registry.find_key(token).await {
            Ok(Some(key)) => {
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(hash, (Instant::now(), key.clone()));
                }
                Ok(Some(key))
            }
            Ok(None) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&hash);
                }
                Ok(None)
            }
            Err(e) => match cached {
                Some((_, key)) => {
                    tracing::warn!(error = %e, "registry unreachable: trusting a cached key");
                    Ok(Some(key))
                }
                None => {
                    tracing::warn!(error = %e, "registry unreachable: cannot check a key");
                    Err(Status::unavailable(
                        "credentials cannot be checked right now",
                    ))
                }
            },
        }
    }

    fn cached(&self, hash: &str) -> Option<(Instant, ApiKey)> {
        self.cache.lock().ok()?.get(hash).cloned()
    }
}

/// The one answer to a credential that is unknown, expired or revoked.
fn refused() -> Status {
    Status::unauthenticated("the credential was refused: unknown, expired or revoked")
}
