//! Who is calling and what they may do. Every gRPC call passes [`layer::AuthLayer`]: it
//! looks the method up in the scope table ([`scopes`]), and unless the method is open it
//! turns the `authorization: Bearer …` credential into a [`Principal`] ([`verify`]) and
//! checks its scopes, before any handler runs. Handlers read the principal from the
//! request's extensions, to record who acted.
//!
//! With `[auth] mode = "none"` (allowed only on loopback listeners, see `config`) every
//! call is let through as today, and the registry records the actor the client names.

pub mod jwt;
pub mod layer;
pub mod rate;
pub mod scopes;
pub mod verify;

pub use layer::AuthLayer;
pub use scopes::{Access, Scope};
pub use verify::Verifier;

/// The principal a connection's verified client certificate stands for (mTLS, `[tls]
/// client_principals`); the TLS listener attaches it to every request of the connection.
#[derive(Debug, Clone, Default)]
pub struct CertPrincipal(pub Option<std::sync::Arc<Principal>>);

/// Marks a call let through without a credential while auth is required (a health check,
/// reflection when open): the budgets give its body only a small allowance, never the
/// memory authenticated callers share (`grpc/budget.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

/// The request's one `authorization` header: `Ok(None)` when absent, refused when sent
/// more than once (which of two credentials a proxy or a handler reads is anybody's guess).
pub fn authorization(
    headers: &tonic::codegen::http::HeaderMap,
) -> Result<Option<&[u8]>, tonic::Status> {
    let mut all = headers
        .get_all(tonic::codegen::http::header::AUTHORIZATION)
        .iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(tonic::Status::unauthenticated(
            "the authorization header is sent more than once: send one credential",
        ));
    }
    Ok(first.map(|v| v.as_bytes()))
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name or the token's subject: what the registry and the audit log record as the actor.
    pub name: String,
    /// What it may do; `admin` allows everything.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the principal may make a call that needs `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// The actor to record for a request: its principal when authenticated, else what the
/// client says (only possible with auth off, on loopback).
pub fn actor<T>(req: &tonic::Request<T>, claimed: &str) -> String {
    match req.extensions().get::<Principal>() {
        Some(p) => p.name.clone(),
        None => claimed.to_string(),
    }
}
