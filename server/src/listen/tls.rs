//! TLS on both listeners, with rustls (ring, as the rest of the build). The certificate,
//! key and client CA are files, re-read when they change ([`Watched`]): each new
//! connection is accepted with the configuration current at that moment, so a rotated
//! certificate reaches new connections while open ones carry on undisturbed.
//!
//! Handshakes run off the accept loop, bounded in number and time, so a client that
//! connects and says nothing holds neither the loop nor memory. A client certificate,
//! once verified, is read once per connection: its common name, looked up in
//! `[tls] client_principals`, is the connection's [`CertPrincipal`] (among its values).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::Conn;
use super::limit::{AcceptErrors, Connections};
use crate::auth::{CertPrincipal, Principal, Scope};
use crate::watch::Watched;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once, per listener; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// What `[tls]` asks for.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// CA bundle (PEM) client certificates are verified against: mTLS when set.
    pub client_ca_file: Option<PathBuf>,
    /// Whether a connection without a client certificate is refused (with a CA).
    pub require_client_cert: bool,
    /// Common name → scopes, for client certificates acting as principals.
    pub principals: Vec<(String, Vec<Scope>)>,
    /// How often the files are checked for a change (zero: never).
    pub reload: Duration,
}

impl TlsSettings {
    /// The settings `[tls]` asks for, when TLS is on (the principals as checked at load).
    pub fn of(config: &crate::config::TlsConfig) -> Option<TlsSettings> {
        config.enabled().then(|| TlsSettings {
            cert_file: PathBuf::from(&config.cert_file),
            key_file: PathBuf::from(&config.key_file),
            client_ca_file: (!config.client_ca_file.is_empty())
                .then(|| PathBuf::from(&config.client_ca_file)),
            require_client_cert: config.client_cert == "required",
            principals: config.principals().unwrap_or_default(),
            reload: Duration::from_secs_f64(config.reload_secs),
        })
    }
}

/// Which protocol a listener speaks over TLS (its ALPN).
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// The metrics endpoint: HTTP/1.1 (what Prometheus speaks).
    Http,
}

/// The two rustls configurations of one set of files.
#[derive(Debug)]
struct Configs {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

/// TLS for the server's listeners.
#[derive(Debug, Clone)]
pub struct Tls {
    configs: Arc<Watched<Configs>>,
    principals: Arc<HashMap<String, Principal>>,
}

impl Tls {
    /// Reads the files now (an error stops the start, naming the file) and keeps them
    /// current. A certificate outside its validity window, or not matching its key, is
    /// refused: at start the server does not come up, on reload the one being served is
    /// kept (with a WARN). `expiry` is set to when the served certificate expires.
    pub fn start(settings: &TlsSettings, expiry: prometheus::IntGauge) -> Result<Tls, String> {
        let mut paths = vec![settings.cert_file.clone(), settings.key_file.clone()];
        paths.extend(settings.client_ca_file.clone());
        let files = settings.clone();
        let configs = Watched::start("tls", paths, settings.reload, move || {
            let (configs, not_after) = load(&files)?;
            expiry.set(not_after);
            Ok(configs)
        })?;
        let principals = settings
            .principals
            .iter()
            .map(|(name, scopes)| {
                let principal = Principal {
                    name: name.clone(),
                    scopes: scopes.clone(),
                };
                (name.clone(), principal)
            })
            .collect();
        Ok(Tls {
            configs,
            principals: Arc::new(principals),
        })
    }

    /// Accepts on `listener` for as long as the returned receiver lives, handing over
    /// connections whose handshake succeeded; each holds a place among `connections`
    /// from its accept on.
    pub fn accept(
        &self,
        listener: TcpListener,
        protocol: Protocol,
        connections: Connections,
    ) -> mpsc::Receiver<TlsConn> {
        let (tx, rx) = mpsc::channel(64);
        let tls = self.clone();
        let name = match protocol {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        };
        tokio::spawn(async move {
            let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
            let mut errors = AcceptErrors::default();
            loop {
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        // Out of descriptors and the like: pause rather than spin.
                        tokio::time::sleep(errors.failed(name, &error)).await;
                        continue;
                    }
                };
                errors.succeeded();
                let Some(slot) = connections.admit() else {
                    continue;
                };
                // Without TCP_NODELAY, small responses wait for the peer's delayed ACK.
                let _ = tcp.set_nodelay(true);
                let configs = tls.configs.get();
                let config = match protocol {
                    Protocol::Grpc => Arc::clone(&configs.grpc),
                    Protocol::Http => Arc::clone(&configs.http),
                };
                let tx = tx.clone();
                let principals = Arc::clone(&tls.principals);
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake = TlsAcceptor::from(config).accept(tcp);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let principal = CertPrincipal(client_principal(&stream, &principals));
                            let mut conn = Conn::new(stream, peer, slot);
                            conn.values.insert(principal);
                            let _ = tx.send(conn).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        rx
    }
}

/// The principal a connection's verified client certificate stands for, if any.
fn client_principal(
    stream: &TlsStream<TcpStream>,
    principals: &HashMap<String, Principal>,
) -> Option<Arc<Principal>> {
    let (_, session) = stream.get_ref();
    let leaf = session.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    principals.get(cn).cloned().map(Arc::new)
}

/// An accepted TLS connection.
pub type TlsConn = Conn<TlsStream<TcpStream>>;

/// Both rustls configurations from the files, and when the certificate expires (in Unix
/// seconds; checked against the clock now).
fn load(settings: &TlsSettings) -> Result<(Configs, i64), String> {
    let chain = certificates(&settings.cert_file, "tls.cert_file")?;
    let validity = valid_now(&chain[0], &settings.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|e| format!("tls.key_file {}: {e}", settings.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(path, "tls.client_ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls.client_ca_file {}: {e}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match settings.require_client_cert {
                true => verifier,
                false => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("tls.client_ca_file {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut grpc = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.cert_file and tls.key_file do not make a pair: {e}"))?;
    let mut http = grpc.clone();
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        Configs {
            grpc: Arc::new(grpc),
            http: Arc::new(http),
        },
        validity,
    ))
}

/// When the leaf certificate expires (Unix seconds), refused when now is outside its
/// validity window (a renewal that wrote an expired or not-yet-valid certificate must
/// not reach clients).
fn valid_now(leaf: &CertificateDer<'_>, path: &Path) -> Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        format!(
            "tls.cert_file {}: not an X.509 certificate: {e}",
            path.display()
        )
    })?;
    let window = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if !window.is_valid_at(now) {
        let state = if now < window.not_before {
            "is not valid yet"
        } else {
            "has expired"
        };
        return Err(format!(
            "tls.cert_file {}: the certificate {state}: valid from {} to {}, and it is now {}",
            path.display(),
            window.not_before,
            window.not_after,
            now
        ));
    }
    Ok(window.not_after.timestamp())
}

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key} {} holds no certificate", path.display()));
    }
    Ok(certs)
}
