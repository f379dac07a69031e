//! `[auth]` and `[tls]`: who may call, and how the wire is protected.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// `none`: every call is let through, and the registry records the actor a client
    /// names (allowed only when every listener is on a loopback address). `required`:
    /// every call but health checks needs `authorization: Bearer <key>` granting the
    /// scope its method needs (`mercator keys create`).
    pub mode: String,
    /// Whether server reflection needs a credential (of any scope) when auth is required:
    /// on by default (it lists every method); `false` opens it to anyone.
    pub protect_reflection: bool,
    /// How long a checked key is trusted before the registry is asked again, in seconds:
    /// a revocation reaches every server within this.
    pub key_cache_secs: f64,
    /// A JWKS file (the identity provider's public keys) to verify JWTs with; empty:
    /// only API keys are accepted. Read again when it changes.
    pub jwks_file: String,
    /// The `iss` every JWT must carry (required with `jwks_file`).
    pub jwt_issuer: String,
    /// The `aud` every JWT must carry (required with `jwks_file`).
    pub jwt_audience: String,
    /// The claim holding a JWT's scopes: a space-separated string (`scope`) or a list
    /// (`scp`, `permissions`); a dotted path reaches into nested claims.
    pub jwt_scopes_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub jwt_leeway_secs: u64,
    /// How often the JWKS file is checked for a change, in seconds (0: never).
    pub jwks_reload_secs: f64,
    /// Per-principal budgets, each `SCOPE=RATE` or `SCOPE=RATE/BURST` in calls per
    /// second (`infer=200/400`); a scope not named is unlimited.
    pub rate_limits: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: "none".into(),
            protect_reflection: true,
            key_cache_secs: 5.0,
            jwks_file: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_scopes_claim: "scope".into(),
            jwt_leeway_secs: 30,
            jwks_reload_secs: 10.0,
            rate_limits: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Whether calls need credentials.
    pub fn required(&self) -> bool {
        self.mode == "required"
    }

    /// The key cache's lifetime.
    pub fn key_cache(&self) -> Duration {
        Duration::from_secs_f64(self.key_cache_secs)
    }

    /// `rate_limits` parsed, each entry's error naming it.
    pub fn rates(
        &self,
    ) -> Result<std::collections::HashMap<crate::auth::Scope, crate::auth::rate::Rate>, String>
    {
        let mut out = std::collections::HashMap::new();
        for (i, entry) in self.rate_limits.iter().enumerate() {
            let field = format!("auth.rate_limits[{i}]");
            let (scope, rate) = entry
                .split_once('=')
                .ok_or_else(|| format!("{field} must be `SCOPE=RATE` or `SCOPE=RATE/BURST`"))?;
            let scope = crate::auth::Scope::parse(scope.trim())
                .ok_or_else(|| format!("{field}: unknown scope `{}`", scope.trim()))?;
            let rate = crate::auth::rate::Rate::parse(rate).ok_or_else(|| {
                format!("{field}: `{rate}` is not a positive rate (calls per second, burst ≥ 1)")
            })?;
            out.insert(scope, rate);
        }
        Ok(out)
    }

    /// What a JWT must satisfy, when JWTs are accepted.
    pub fn jwt(&self) -> Option<crate::auth::jwt::JwtSettings> {
        (!self.jwks_file.is_empty()).then(|| crate::auth::jwt::JwtSettings {
            jwks_file: PathBuf::from(&self.jwks_file),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            scopes_claim: self.jwt_scopes_claim.clone(),
            leeway: Duration::from_secs(self.jwt_leeway_secs),
            reload: Duration::from_secs_f64(self.jwks_reload_secs),
        })
    }
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM). With `key_file`, both listeners speak TLS
    /// only. Both files are read again when they change: new connections get the new
    /// certificate, open ones keep theirs.
    pub cert_file: String,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// CA certificates (PEM) that client certificates are verified against: mTLS.
    pub client_ca_file: String,
    /// With `client_ca_file`: `required` refuses a connection without a valid client
    /// certificate; `optional` verifies one only when presented.
    pub client_cert: String,
    /// Client certificates as principals, each `COMMON_NAME=scope scope…`
    /// (`ops-bot=admin`): a call without a bearer credential, on a connection whose
    /// verified certificate has that common name, acts as it with those scopes.
    pub client_principals: Vec<String>,
    /// How often the files are checked for a change, in seconds (0: never).
    pub reload_secs: f64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            client_cert: "required".into(),
            client_principals: Vec::new(),
            reload_secs: 10.0,
        }
    }
}

impl TlsConfig {
    /// Whether the listeners speak TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty()
    }

    /// `client_principals` parsed: common name → scope names.
    pub fn principals(&self) -> Result<Vec<(String, Vec<crate::auth::Scope>)>, String> {
        let mut out = Vec::new();
        for (i, entry) in self.client_principals.iter().enumerate() {
            let field = format!("tls.client_principals[{i}]");
            let Some((name, scopes)) = entry.split_once('=') else {
                return Err(format!("{field} must be `COMMON_NAME=scope scope…`"));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("{field} names no common name"));
            }
            let mut parsed = Vec::new();
            for scope in scopes.split_whitespace() {
                parsed.push(
                    crate::auth::Scope::parse(scope)
                        .ok_or_else(|| format!("{field}: unknown scope `{scope}`"))?,
                );
            }
            out.push((name.to_string(), parsed));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn refused(tweak: impl FnOnce(&mut Config)) -> String {
        let mut c = Config::default();
        tweak(&mut c);
        c.validate().expect_err("refused").to_string()
    }

    #[test]
    fn tls_settings_are_checked_naming_the_key() {
        assert!(refused(|c| c.tls.cert_file = "a.pem".into()).contains("tls.key_file"));
        assert!(refused(|c| c.tls.client_ca_file = "ca.pem".into()).contains("tls.client_ca_file"));
        let unknown = refused(|c| {
            c.tls.cert_file = "a.pem".into();
            c.tls.key_file = "a.key".into();
            c.tls.client_ca_file = "ca.pem".into();
            c.tls.client_principals = vec!["ops=admin".into(), "ci=models:write root".into()];
        });
        assert!(
            unknown.contains("tls.client_principals[1]") && unknown.contains("`root`"),
            "{unknown}"
        );
        let shape = refused(|c| {
            c.tls.cert_file = "a.pem".into();
            c.tls.key_file = "a.key".into();
            c.tls.client_ca_file = "ca.pem".into();
            c.tls.client_principals = vec!["admin".into()];
        });
        assert!(shape.contains("COMMON_NAME=scope"), "{shape}");
        assert!(refused(|c| c.tls.client_cert = "maybe".into()).contains("tls.client_cert"));
        assert!(
            refused(|c| c.tls.client_principals = vec!["ops=admin".into()])
                .contains("needs tls.client_ca_file")
        );
    }
}
