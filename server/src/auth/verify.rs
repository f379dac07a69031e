//! Credentials to principals. A bearer credential starting `mk_` is an API key; any
//! other is a JWT, checked by [`JwtVerifier`] when `[auth] jwks_file` is set. API keys are looked up in the registry by their hash and
//! trusted for `[auth] key_cache_secs` (so a revocation reaches every replica within
//! that); expiry is checked on every call. When the registry cannot be reached, a key
//! seen before keeps working; an unseen one is refused as UNAVAILABLE.
//!
//! The refusal never says whether a key exists, and no credential is ever logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use mercator_registry::keys::{KEY_PREFIX, fingerprint};
use mercator_registry::{ApiKey, Registry};
use tonic::Status;

use super::jwt::JwtVerifier;
use super::{Principal, Scope};

/// Most keys held in the cache; past this it starts again (keys are few, tokens may not be).
const CACHE_LIMIT: usize = 10_000;

/// Turns credentials into principals.
#[derive(Debug)]
pub struct Verifier {
    registry: Registry,
    ttl: Duration,
    /// `None`: only API keys are accepted.
    jwt: Option<JwtVerifier>,
    /// Key fingerprint → when it was read, and what it grants.
    cache: Mutex<HashMap<String, (Instant, Arc<Grant>)>>,
}

/// A key as the request path needs it: its principal, with the scopes parsed once when
/// the key is read from the registry, beside the key (whose lifetime is checked per call).
#[derive(Debug)]
struct Grant {
    principal: Principal,
    key: ApiKey,
}

impl From<ApiKey> for Grant {
    fn from(key: ApiKey) -> Grant {
        let principal = Principal {
            name: key.name.clone(),
            scopes: key.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        };
        Grant { principal, key }
    }
}

impl Verifier {
    /// A verifier over `registry`'s keys, trusting a lookup for `ttl`, and of JWTs when
    /// `jwt` is given.
    pub fn new(registry: Registry, ttl: Duration, jwt: Option<JwtVerifier>) -> Verifier {
        Verifier {
            registry,
            ttl,
            jwt,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Who a call acts as: its bearer credential (`authorization`), when sent; else the
    /// connection's client certificate, when it stands for a principal (`certified`).
    /// The one rule for the gRPC layer and the REST edge.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        certified: Option<&Principal>,
    ) -> Result<Principal, Status> {
        match (authorization, certified) {
            (None, Some(p)) => Ok(p.clone()),
            _ => self.principal(authorization).await,
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
        if !token.starts_with(KEY_PREFIX) {
            let Some(jwt) = &self.jwt else {
                return Err(refused());
            };
            return jwt.verify(token).map_err(|why| {
                tracing::debug!(%why, "token refused");
                refused()
            });
        }
        match self.grant(token).await? {
            Some(g) if g.key.is_active(Utc::now()) => Ok(g.principal.clone()),
            _ => Err(refused()),
        }
    }

    async fn grant(&self, token: &str) -> Result<Option<Arc<Grant>>, Status> {
        let hash = fingerprint(token);
        let cached = self.cached(&hash);
        if let Some((read, grant)) = &cached
            && read.elapsed() < self.ttl
        {
            return Ok(Some(Arc::clone(grant)));
        }
        match self.registry.find_key(&hash).await {
            Ok(Some(key)) => {
                let grant = Arc::new(Grant::from(key));
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(hash, (Instant::now(), Arc::clone(&grant)));
                }
                Ok(Some(grant))
            }
            Ok(None) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&hash);
                }
                Ok(None)
            }
            Err(e) => match cached {
                Some((_, grant)) => {
                    tracing::warn!(error = %e, "registry unreachable: trusting a cached key");
                    Ok(Some(grant))
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

    fn cached(&self, hash: &str) -> Option<(Instant, Arc<Grant>)> {
        self.cache.lock().ok()?.get(hash).cloned()
    }
}

/// The one answer to a credential that is unknown, expired or revoked.
fn refused() -> Status {
    Status::unauthenticated("the credential was refused: unknown, expired or revoked")
}
