//! Reaching the brokers: one `rskafka` client per process from `[streams]` (TLS from PEM
//! files, SASL with the password read from its file), and which partitions are this
//! replica's.

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::StreamError;
use crate::settings::StreamsConfig;

/// Connects to the bootstrap brokers.
pub async fn connect(config: &StreamsConfig) -> Result<Client, StreamError> {
    let mut builder = ClientBuilder::new(config.brokers.clone())
        .client_id(config.client_id.clone())
        // rskafka retries inside each call; a deadline hands a broker that stays away
        // back to the consumer's own backoff, which counts and logs it.
        .backoff_config(rskafka::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 3.0,
            deadline: Some(Duration::from_secs(30)),
        });
    if config.tls.enabled {
        builder = builder.tls_config(Arc::new(tls(config)?));
    }
    if !config.sasl.mechanism.is_empty() {
        let password = std::fs::read_to_string(&config.sasl.password_file).map_err(|e| {
            StreamError::Config(format!(
                "streams.sasl.password_file {}: {e}",
                config.sasl.password_file
            ))
        })?;
        let credentials = Credentials::new(
            config.sasl.username.clone(),
            password.trim_end_matches(['\r', '\n']).to_string(),
        );
        builder = builder.sasl_config(match config.sasl.mechanism.as_str() {
            "PLAIN" => SaslConfig::Plain(credentials),
            "SCRAM-SHA-256" => SaslConfig::ScramSha256(credentials),
            _ => SaslConfig::ScramSha512(credentials),
        });
    }
    builder.build().await.map_err(StreamError::Kafka)
}

fn tls(config: &StreamsConfig) -> Result<rustls::ClientConfig, StreamError> {
    let t = &config.tls;
    let bad = |file: &str, e: &dyn std::fmt::Display| {
        StreamError::Config(format!("streams.tls {file}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    if t.ca_file.is_empty() {
        return Err(StreamError::Config(
            "streams.tls.ca_file: give the CA that signs the brokers' certificates".into(),
        ));
    }
    for cert in CertificateDer::pem_file_iter(&t.ca_file).map_err(|e| bad(&t.ca_file, &e))? {
        roots
            .add(cert.map_err(|e| bad(&t.ca_file, &e))?)
            .map_err(|e| bad(&t.ca_file, &e))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    if t.cert_file.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = CertificateDer::pem_file_iter(&t.cert_file)
        .map_err(|e| bad(&t.cert_file, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&t.cert_file, &e))?;
    let key = PrivateKeyDer::from_pem_file(&t.key_file).map_err(|e| bad(&t.key_file, &e))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad(&t.cert_file, &e))
}

/// The partitions of `all` this replica consumes: `p mod replicas == index`. Every
/// partition has exactly one owner among `0..replicas`, and each replica's share differs
/// from another's by at most one.
pub fn assigned(all: impl IntoIterator<Item = i32>, replicas: u32, index: u32) -> Vec<i32> {
    let replicas = i64::from(replicas.max(1));
    all.into_iter()
        .filter(|&p| i64::from(p).rem_euclid(replicas) == i64::from(index))
        .collect()
}

/// The partitions of `topic`, if the brokers know it.
pub async fn partitions(client: &Client, topic: &str) -> Result<Option<Vec<i32>>, StreamError> {
    let topics = client.list_topics().await.map_err(StreamError::Kafka)?;
    Ok(topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_split_the_partitions_and_together_cover_each_once() {
        for replicas in 1..=5u32 {
            let mut seen: Vec<i32> = (0..replicas)
                .flat_map(|i| assigned(0..12, replicas, i))
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..12).collect::<Vec<_>>(), "{replicas} replicas");
        }
        assert_eq!(assigned(0..6, 2, 0), [0, 2, 4]);
        assert_eq!(assigned(0..6, 2, 1), [1, 3, 5]);
    }
}
