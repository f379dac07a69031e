//! The Redis URL a configuration names, made into a client. `redis://` is plain TCP;
//! `rediss://` is TLS (rustls), verified against the system's roots or, with
//! `?tls_ca_file=PATH`, against that PEM bundle alone (a private CA); `tls_cert_file` and
//! `tls_key_file` add a client certificate for servers that ask for one. Those three
//! parameters are ours: they are taken out before the redis client sees the URL. No
//! error quotes the URL's password.

use redis::{ClientTlsConfig, TlsCertificates};

use crate::{FeatureError, Result};

const CA_FILE: &str = "tls_ca_file";
const CERT_FILE: &str = "tls_cert_file";
const KEY_FILE: &str = "tls_key_file";

/// A client for `url`, with its TLS files read.
pub(super) fn client(url: &str) -> Result<redis::Client> {
    let mut parsed = url::Url::parse(url).map_err(|e| invalid(url, &e.to_string()))?;
    let (mut ca, mut cert, mut key) = (None, None, None);
    let mut kept: Vec<(String, String)> = Vec::new();
    for (name, value) in parsed.query_pairs() {
        let slot = match name.as_ref() {
            CA_FILE => &mut ca,
            CERT_FILE => &mut cert,
            KEY_FILE => &mut key,
            _ => {
                kept.push((name.into_owned(), value.into_owned()));
                continue;
            }
        };
        *slot = Some(value.into_owned());
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(&kept);
    }
    let tls_files = ca.is_some() || cert.is_some() || key.is_some();
    if tls_files && parsed.scheme() != "rediss" {
        return Err(invalid(
            url,
            "tls_ca_file, tls_cert_file and tls_key_file need a rediss:// URL",
        ));
    }
    if !tls_files {
        return redis::Client::open(parsed.as_str()).map_err(|e| invalid(url, &e.to_string()));
    }
    let client_tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(url, CERT_FILE, &cert)?,
            client_key: read(url, KEY_FILE, &key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(invalid(
                url,
                "tls_cert_file and tls_key_file go together (a client certificate and its key)",
            ));
        }
    };
    let root_cert = ca.map(|path| read(url, CA_FILE, &path)).transpose()?;
    redis::Client::build_with_tls(
        parsed.as_str(),
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| invalid(url, &e.to_string()))
}

fn read(url: &str, param: &str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(url, &format!("{param} '{path}': {e}")))
}

fn invalid(url: &str, message: &str) -> FeatureError {
    FeatureError::InvalidRequest {
        field: "online_store".into(),
        message: format!("'{}': {message}", redacted(url)),
    }
}

/// `url` with its password, if any, replaced by `***` (and the whole text replaced when
/// it does not parse, since a password may be anywhere in it).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match client(url) {
            Err(FeatureError::InvalidRequest { message, .. }) => message,
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_tls_urls_make_clients() {
        assert!(client("redis://127.0.0.1:6379/0").is_ok());
        assert!(client("rediss://127.0.0.1:6380/0").is_ok());
    }

    #[test]
    fn tls_files_need_rediss_and_exist() {
        assert!(message("redis://h:1/?tls_ca_file=/x").contains("need a rediss:// URL"));
        let m = message("rediss://h:1/?tls_ca_file=/nonexistent/ca.pem");
        assert!(m.contains("tls_ca_file '/nonexistent/ca.pem'"), "{m}");
        let m = message("rediss://h:1/?tls_cert_file=/a.pem");
        assert!(m.contains("go together"), "{m}");
    }

    #[test]
    fn errors_never_quote_the_password() {
        let m = message("redis://user:s3cret@h:1/?tls_ca_file=/x");
        assert!(!m.contains("s3cret"), "{m}");
        assert!(m.contains("user:***@h"), "{m}");
        assert_eq!(redacted("not a url s3cret"), "(an unparsable URL)");
    }
}
