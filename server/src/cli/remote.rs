//! How the CLI reaches a service: a running server's (`--server URL`), with the caller's
//! credential on every request, or the same service in this process. Both are one boxed
//! transport type, so every command has one path.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tonic::codegen::http;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tower::ServiceExt;

use crate::auth::{Principal, Scope};

/// A gRPC request as the transport sees it.
pub type Request = http::Request<tonic::body::Body>;

/// A channel to a server, or a service in this process.
pub type Transport =
    tower::util::BoxCloneService<Request, http::Response<tonic::body::Body>, tower::BoxError>;

/// The credential sent to a server (`[auth] mode = "required"`).
#[derive(Debug, Clone, Default, Args)]
pub struct Credential {
    /// An API key (`mercator keys create`), sent as `authorization: Bearer …`.
    #[arg(long, env = "MERCATOR_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A file holding the key (e.g. a mounted Secret), instead of --token.
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// For an `https://` server: CA certificates (PEM) to trust besides the system's.
    #[arg(long, env = "MERCATOR_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// For a server that asks for client certificates (mTLS): this client's (PEM).
    #[arg(
        long,
        env = "MERCATOR_CLIENT_CERT",
        global = true,
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "MERCATOR_CLIENT_KEY",
        global = true,
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
}

impl Credential {
    /// The `authorization` header to send, if a credential was given. Marked sensitive,
    /// so no debug output of the request prints it.
    fn header(&self) -> anyhow::Result<Option<http::HeaderValue>> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the token file {}", file.display()))?
                .trim()
                .to_string(),
            (None, None) => return Ok(None),
        };
        if token.is_empty() {
            return Ok(None);
        }
        let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("the token has characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// TLS for an `https://` URL: the system's roots, `--ca-file`'s, and the client
    /// certificate when given.
    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &self.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(tls)
    }
}

/// A transport to the server at `url`, sending `credential` with every call.
pub async fn connect(url: &str, credential: &Credential) -> anyhow::Result<Transport> {
    let header = credential.header()?;
    let mut endpoint =
        Channel::from_shared(url.to_string()).with_context(|| format!("bad server URL '{url}'"))?;
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(credential.tls()?)
            .context("setting up TLS")?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {url}"))?;
    let service = channel
        .map_request(move |mut req: Request| {
            if let Some(value) = &header {
                req.headers_mut()
                    .insert(http::header::AUTHORIZATION, value.clone());
            }
            req
        })
        .map_err(tower::BoxError::from);
    Ok(Transport::new(service))
}

/// A transport to `service` in this process, called as `actor`: whoever can open the
/// storage directly is its administrator, so the calls carry an admin principal (the
/// audit log records `actor`).
pub fn in_process<S>(service: S, actor: &str) -> Transport
where
    S: tower::Service<Request, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
{
    let principal = Principal {
        name: actor.to_string(),
        scopes: vec![Scope::Admin],
    };
    let service = service
        .map_request(move |mut req: Request| {
            req.extensions_mut().insert(principal.clone());
            req
        })
        .map_err(Into::into);
    Transport::new(service)
}

/// Who the CLI acts as when not told: `$USER`, else `unknown`.
pub fn default_actor(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}
