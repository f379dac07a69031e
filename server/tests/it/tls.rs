//! TLS and mTLS with a certificate authority made in the test (rcgen): a client
//! certificate as the principal, clients without a certificate or trusting another CA
//! refused, plain text refused, the metrics listener over TLS (and protected), a
//! rotated server certificate reaching new connections while an open one carries on,
//! and tritonclient over TLS with a token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_server::auth::Scope;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness::{CHURN_DIR, TestServer, bearer};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self, cn: &str) -> Issued {
        self.issue(
            cn,
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A server certificate valid only from the start of year `from` to that of `to`.
    pub fn server_between(&self, cn: &str, from: i32, to: i32) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A client certificate whose subject's common name is `cn`.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, cn: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes PEM files the server reads (renamed into place, as a Secret update would).
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text).expect("write pem");
    std::fs::rename(&tmp, &path).expect("rename pem");
    path
}

fn client_tls(ca: &Ca, identity: Option<&Issued>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    match identity {
        Some(id) => config.identity(Identity::from_pem(&id.cert, &id.key)),
        None => config,
    }
}

async fn connect(server: &TestServer, tls: Option<ClientTlsConfig>) -> Result<Channel, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{}", server.grpc))
        .expect("url")
        .connect_timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).expect("tls config");
    }
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

/// Whether `ListModels` passes (with `token` when given) over `channel`.
async fn list(channel: Channel, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut registry = RegistryClient::new(channel);
    let req = match token {
        Some(t) => bearer(pb::ListModelsRequest {}, t),
        None => tonic::Request::new(pb::ListModelsRequest {}),
    };
    registry.list_models(req).await.map(|_| ())
}

/// A raw TLS client (rustls), to see the server's certificate and to speak HTTP/1.1.
fn rustls_client(ca: &Ca, identity: Option<&Issued>, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("ca der"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(id.key.as_bytes()).expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The common name of the certificate the server presents to a new connection.
async fn presented(server: &TestServer, ca: &Ca) -> String {
    let tcp = tokio::net::TcpStream::connect(server.grpc)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = rustls_client(ca, None, b"h2")
        .connect(name, tcp)
        .await
        .expect("handshake");
    let (_, session) = tls.get_ref();
    let leaf = session.peer_certificates().expect("certs")[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).expect("x509");
    let cn = cert.subject().iter_common_name().next().expect("cn");
    cn.as_str().expect("utf-8").to_string()
}

/// `GET /metrics` over TLS; the status line and body.
async fn scrape(server: &TestServer, ca: &Ca, identity: &Issued, token: Option<&str>) -> String {
    https(server, ca, identity, token, "GET /metrics", "").await
}

/// One HTTP/1.1 request (`line`: method and path) to the HTTP listener over TLS with a
/// client certificate; the whole answer.
async fn https(
    server: &TestServer,
    ca: &Ca,
    identity: &Issued,
    token: Option<&str>,
    line: &str,
    body: &str,
) -> String {
    let tcp = tokio::net::TcpStream::connect(server.metrics)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = rustls_client(ca, Some(identity), b"http/1.1")
        .connect(name, tcp)
        .await
        .expect("HTTP listener handshake");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{line} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_names_the_principal_and_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("Mercator test CA");
    let server_cert = ca.server("mercator-1");
    let cert = write(dir.path(), "server.pem", &server_cert.cert);
    let key = write(dir.path(), "server.key", &server_cert.key);
    let client_ca = write(dir.path(), "clients.pem", &ca.pem());
    let ops = ca.client("ops-bot");
    let stranger = ca.client("stranger");
    let server = TestServer::builder()
        .churn()
        .tls(client_tls(&ca, Some(&ops)))
        .config(move |c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
            c.metrics.protect = true;
            c.tls.cert_file = cert.display().to_string();
            c.tls.key_file = key.display().to_string();
            c.tls.client_ca_file = client_ca.display().to_string();
            c.tls.client_principals = vec!["ops-bot=admin".into()];
        })
        .start()
        .await;

    // The certificate is the principal: no bearer credential needed, and it is the actor.
    let channel = connect(&server, Some(client_tls(&ca, Some(&ops))))
        .await
        .expect("mTLS connect");
    list(channel.clone(), None).await.expect("ops-bot is admin");
    let registered = RegistryClient::new(channel)
        .register_version(pb::RegisterVersionRequest {
            actor: "root".into(),
            ..crate::lifecycle::upload("churn")
        })
        .await
        .expect("register as ops-bot")
        .into_inner()
        .version
        .expect("version");
    assert_eq!(registered.registered_by, "ops-bot");

    // A valid certificate that stands for no principal: it may connect, not call…
    let channel = connect(&server, Some(client_tls(&ca, Some(&stranger))))
        .await
        .expect("a verified certificate connects");
    let refused = list(channel.clone(), None).await.expect_err("no principal");
    assert_eq!(refused.code(), Code::Unauthenticated);
    // …unless it sends a credential, which then decides.
    let (_, reader) = server
        .registry
        .create_key("reader", &[Scope::Infer.name().into()], None, "test")
        .await
        .expect("key");
    list(channel, Some(&reader)).await.expect("key over mTLS");

    // No client certificate, another CA's, or plain text: no call gets through.
    let other = Ca::new("Someone else's CA");
    let impostor = other.client("ops-bot");
    for (what, tls) in [
        ("no client certificate", Some(client_tls(&ca, None))),
        (
            "another CA's certificate",
            Some(client_tls(&ca, Some(&impostor))),
        ),
        ("plain text", None),
    ] {
        let outcome = match connect(&server, tls).await {
            Err(_) => Ok(()),
            Ok(channel) => match list(channel, Some(&reader)).await {
                // TLS 1.3 finishes the client's side of the handshake before the server's
                // refusal arrives: the first call then fails on the transport (plain text
                // meets a TLS record where HTTP/2 expected a frame). The code varies with
                // the moment the connection dies; an auth refusal would mean it got in.
                Err(status)
                    if !matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied
                    ) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            },
        };
        assert!(outcome.is_ok(), "{what} got through: {outcome:?}");
    }
    // A client that does not trust the server's CA refuses the server.
    let distrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(other.pem()))
        .identity(Identity::from_pem(&ops.cert, &ops.key))
        .domain_name("localhost");
    if let Ok(channel) = connect(&server, Some(distrusting)).await {
        assert!(list(channel, None).await.is_err());
    }

    // Metrics over TLS, protected: a scrape needs a credential.
    let open = scrape(&server, &ca, &ops, None).await;
    assert!(open.starts_with("HTTP/1.1 401"), "{open}");
    let scraped = scrape(&server, &ca, &ops, Some(&reader)).await;
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(scraped.contains("mercator_"), "{scraped}");

    // V2 over REST on the same TLS listener: the client certificate is the principal
    // there too, and a certificate that stands for none needs a credential.
    let body = r#"{"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                   "data": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}]}"#;
    let answered = https(
        &server,
        &ca,
        &ops,
        None,
        "POST /v2/models/churn/infer",
        body,
    )
    .await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains(r#""model_version":"1""#), "{answered}");
    let refused = https(
        &server,
        &ca,
        &stranger,
        None,
        "POST /v2/models/churn/infer",
        body,
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let with_key = https(
        &server,
        &ca,
        &stranger,
        Some(&reader),
        "POST /v2/models/churn/infer",
        body,
    )
    .await;
    assert!(with_key.starts_with("HTTP/1.1 200"), "{with_key}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_reaches_new_connections_and_spares_open_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("Mercator test CA");
    let first = ca.server("mercator-2026-11");
    let cert = write(dir.path(), "server.pem", &first.cert);
    let key = write(dir.path(), "server.key", &first.key);
    let (cert_path, key_path) = (cert.clone(), key.clone());
    let server = TestServer::builder()
        .churn()
        .tls(client_tls(&ca, None))
        .config(move |c| {
            c.tls.cert_file = cert_path.display().to_string();
            c.tls.key_file = key_path.display().to_string();
            c.tls.reload_secs = 0.05;
        })
        .start()
        .await;
    assert_eq!(presented(&server, &ca).await, "mercator-2026-11");
    let open = connect(&server, Some(client_tls(&ca, None)))
        .await
        .expect("connect");
    list(open.clone(), None).await.expect("before the rotation");

    let second = ca.server("mercator-2026-12");
    // The key first, then the certificate: in between, the pair does not match and the
    // old one is kept.
    write(dir.path(), "server.key", &second.key);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(presented(&server, &ca).await, "mercator-2026-11");
    write(dir.path(), "server.pem", &second.cert);
    let mut seen = String::new();
    for _ in 0..200 {
        seen = presented(&server, &ca).await;
        if seen == "mercator-2026-12" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        seen, "mercator-2026-12",
        "the new certificate was never served"
    );
    list(open, None)
        .await
        .expect("the connection opened before the rotation still works");

    // The CLI over TLS, trusting the test's CA.
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let url = format!("https://localhost:{}", server.grpc.port());
    let ca_arg = ca_file.display().to_string();
    let listed = tokio::task::spawn_blocking(move || {
        crate::cli::ok(&["models", "--server", &url, "--ca-file", &ca_arg, "list"])
    })
    .await
    .expect("cli");
    assert!(listed.contains("churn"), "{listed}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_calls_over_mtls_with_a_token() {
    let Some(python) = crate::tritonclient::python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON with tritonclient installed"
        );
        eprintln!("no Python with tritonclient (set MERCATOR_PYTHON): skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("Mercator test CA");
    let server_cert = ca.server("mercator");
    let client = ca.client("scoring-service");
    let cert = write(dir.path(), "server.pem", &server_cert.cert);
    let key = write(dir.path(), "server.key", &server_cert.key);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let client_cert = write(dir.path(), "client.pem", &client.cert);
    let client_key = write(dir.path(), "client.key", &client.key);
    let server_ca = ca_file.clone();
    let server = TestServer::builder()
        .churn()
        .tls(client_tls(&ca, Some(&client)))
        .config(move |c| {
            c.auth.mode = "required".into();
            c.tls.cert_file = cert.display().to_string();
            c.tls.key_file = key.display().to_string();
            c.tls.client_ca_file = server_ca.display().to_string();
        })
        .start()
        .await;
    let (_, token) = server
        .registry
        .create_key("scoring-service", &["infer".into()], None, "test")
        .await
        .expect("key");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tritonclient_tls.py");
    let out = Command::new(python)
        .arg(script)
        .arg(format!("localhost:{}", server.grpc.port()))
        .arg(&ca_file)
        .arg(&client_cert)
        .arg(&client_key)
        .arg(CHURN_DIR)
        .env("MERCATOR_TOKEN", &token)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("tritonclient tls: "), "{stdout}{stderr}");
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_outside_their_validity_are_refused_at_start_and_on_reload() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new("Mercator test CA");
    let expired = ca.server_between("expired", 2020, 2021);
    let early = ca.server_between("early", 2090, 2091);
    // At start: the server does not come up, and says which file and which dates.
    for (issued, words) in [(&expired, "has expired"), (&early, "is not valid yet")] {
        let cert = write(dir.path(), "bad.pem", &issued.cert);
        let key = write(dir.path(), "bad.key", &issued.key);
        let mut config = mercator_server::config::Config::default();
        config.server.data_dir = dir.path().join("data");
        config.grpc.addr = "127.0.0.1:0".parse().expect("addr");
        config.metrics.addr = "127.0.0.1:0".parse().expect("addr");
        config.tls.cert_file = cert.display().to_string();
        config.tls.key_file = key.display().to_string();
        let err = match mercator_server::app::App::build(config).await {
            Ok(_) => panic!("a certificate that {words} was taken"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(words), "{err}");
        assert!(err.contains("bad.pem"), "names the file: {err}");
        assert!(
            err.contains("2021") || err.contains("2090"),
            "gives the dates: {err}"
        );
    }

    // On reload: the certificate being served is kept, and its expiry is exported.
    let good = ca.server("mercator-good");
    let cert = write(dir.path(), "server.pem", &good.cert);
    let key = write(dir.path(), "server.key", &good.key);
    let (cert_path, key_path) = (cert.clone(), key.clone());
    let server = TestServer::builder()
        .churn()
        .tls(client_tls(&ca, None))
        .config(move |c| {
            c.tls.cert_file = cert_path.display().to_string();
            c.tls.key_file = key_path.display().to_string();
            c.tls.reload_secs = 0.05;
        })
        .start()
        .await;
    write(dir.path(), "server.key", &expired.key);
    write(dir.path(), "server.pem", &expired.cert);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(presented(&server, &ca).await, "mercator-good");
    let client = ca.client("scraper");
    let text = scrape(&server, &ca, &client, None).await;
    let expiry = text
        .lines()
        .find_map(|l| l.strip_prefix("mercator_tls_certificate_expiry_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no expiry in {text}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        expiry > now,
        "the served (good) certificate's expiry: {expiry} vs {now}"
    );
    server.stop().await;
}
