//! `[streams]`: the brokers, how to reach them, which replica this is, and the sources and
//! triggers. The server's configuration embeds this section whole; `check` is the one
//! place its values are judged, before anything connects.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[streams]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamsConfig {
    /// Bootstrap brokers, `host:port` each (empty: no streams).
    pub brokers: Vec<String>,
    /// The client id brokers see in their logs and quotas.
    pub client_id: String,
    /// `[streams.tls]`: TLS to the brokers.
    pub tls: KafkaTls,
    /// `[streams.sasl]`: SASL authentication.
    pub sasl: KafkaSasl,
    /// How many replicas share the sources' partitions.
    pub replicas: u32,
    /// This replica's index, `0..replicas`: it consumes the partitions `p` with
    /// `p mod replicas == index`. -1 (the default): the ordinal at the end of the host
    /// name, as a StatefulSet's pods are named (`mercator-2` is 2), else 0.
    pub index: i64,
    /// Where a partition without a committed offset starts: `earliest` or `latest`.
    pub start: String,
    /// Most bytes one fetch asks for.
    pub fetch_max_bytes: i32,
    /// Longest a fetch waits for a message at the end of a partition, in milliseconds
    /// (it returns as soon as one arrives).
    pub fetch_max_wait_ms: i32,
    /// `[[streams.sources]]`.
    pub sources: Vec<SourceConfig>,
    /// `[[streams.triggers]]`.
    pub triggers: Vec<TriggerConfig>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            brokers: Vec::new(),
            client_id: "mercator".into(),
            tls: KafkaTls::default(),
            sasl: KafkaSasl::default(),
            replicas: 1,
            index: -1,
            start: "earliest".into(),
            fetch_max_bytes: 1 << 20,
            fetch_max_wait_ms: 500,
            sources: Vec::new(),
            triggers: Vec::new(),
        }
    }
}

/// `[streams.tls]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaTls {
    /// Whether the brokers speak TLS.
    pub enabled: bool,
    /// PEM file of the CA(s) that sign the brokers' certificates (empty: the Mozilla
    /// roots, for managed clusters with public certificates).
    pub ca_file: String,
    /// PEM certificate chain and key of this client, for brokers that require mTLS.
    pub cert_file: String,
    /// The key of `cert_file`.
    pub key_file: String,
}

/// `[streams.sasl]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (empty: no SASL).
    pub mechanism: String,
    /// The user.
    pub username: String,
    /// A file holding the password (a mounted secret): the password itself never sits
    /// in the configuration, so `mercator config show` and logs cannot print it.
    pub password_file: String,
}

/// What a source's rows are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Rows of a feature view (`view`), written as `Push` writes them.
    #[default]
    Features,
    /// Outcomes of a model (`model`), stored as `Outcomes/Push` stores them.
    Outcomes,
}

/// `[[streams.sources]]`: one topic feeding one view (or a model's outcomes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceConfig {
    /// The source's name (offsets, metrics and triggers use it).
    pub name: String,
    /// The topic consumed.
    pub topic: String,
    /// `features` (the default) or `outcomes`.
    pub kind: SourceKind,
    /// The feature view its rows go to (`kind = "features"`).
    pub view: String,
    /// The model its outcomes are of (`kind = "outcomes"`).
    pub model: String,
    /// The messages' format: `json` (one object per message).
    pub format: String,
    /// The message's name for a name of the view (`customer_id = "cust"`), for
    /// producers whose names differ; unmapped names are read as they are.
    pub fields: BTreeMap<String, String>,
    /// How a number in the event time counts: `s` (default), `ms` or `us` since the
    /// epoch (RFC 3339 text is always read).
    pub timestamp_unit: String,
    /// Where a message that cannot be read goes, with the field at fault in its headers
    /// (empty: counted and logged only).
    pub dead_letter_topic: String,
}

/// `[[streams.triggers]]`: re-score the entities a source writes and publish the
/// runbook's intervention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TriggerConfig {
    /// The rule's name (the cooldown and the event carry it).
    pub name: String,
    /// The source whose rows fire it.
    pub source: String,
    /// The churn model scoring the entity.
    pub model: String,
    /// The version or alias (empty: the model's traffic split).
    pub version: String,
    /// The topic interventions are published to.
    pub topic: String,
    /// How long a (customer, rule) stays quiet after an intervention, e.g. `24h`.
    pub cooldown: String,
    /// How many reasons the event carries.
    pub top_reasons: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            name: String::new(),
            source: String::new(),
            model: "churn".into(),
            version: String::new(),
            topic: String::new(),
            cooldown: "24h".into(),
            top_reasons: 3,
        }
    }
}

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest message kept.
    Earliest,
    /// The next message produced.
    Latest,
}

impl StreamsConfig {
    /// Whether any source is configured.
    pub fn enabled(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Where partitions without an offset start.
    pub fn start(&self) -> Start {
        if self.start == "latest" {
            Start::Latest
        } else {
            Start::Earliest
        }
    }

    /// This replica's index: `index`, or the ordinal ending `hostname` (a StatefulSet's
    /// pod), or 0; `None` when that ordinal is not below `replicas` (a StatefulSet scaled
    /// past `replicas`: such a pod must consume nothing rather than share a partition).
    /// One replica is always index 0, whatever the host is called.
    pub fn replica_index(&self, hostname: Option<&str>) -> Option<u32> {
        if let Ok(i) = u32::try_from(self.index) {
            return Some(i);
        }
        if self.replicas <= 1 {
            return Some(0);
        }
        let ordinal = hostname
            .and_then(|h| h.rsplit_once('-'))
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .unwrap_or(0);
        (ordinal < self.replicas).then_some(ordinal)
    }

    /// Checks the section; each message is `key: what is wrong`.
    pub fn check(&self) -> Result<(), String> {
        if self.sources.is_empty() && self.triggers.is_empty() {
            return Ok(());
        }
        if self.brokers.is_empty() {
            return Err("streams.brokers: give at least one broker for the sources".into());
        }
        if self.replicas == 0 {
            return Err("streams.replicas: at least 1".into());
        }
        if self.index >= i64::from(self.replicas) || self.index < -1 {
            return Err(format!(
                "streams.index: {} is not in 0..{} (or -1 for the host name's ordinal)",
                self.index, self.replicas
            ));
        }
        if !matches!(self.start.as_str(), "earliest" | "latest") {
            return Err("streams.start: earliest or latest".into());
        }
        if self.fetch_max_bytes < 1024 || self.fetch_max_wait_ms < 0 {
            return Err("streams.fetch_max_bytes (>= 1024) / fetch_max_wait_ms (>= 0)".into());
        }
        if !matches!(
            self.sasl.mechanism.as_str(),
            "" | "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
        ) {
            return Err("streams.sasl.mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512".into());
        }
        if !self.sasl.mechanism.is_empty()
            && (self.sasl.username.is_empty() || self.sasl.password_file.is_empty())
        {
            return Err("streams.sasl: give username and password_file".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            s.check(&format!("streams.sources[{i}]"))?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("streams.sources[{i}].name: '{}' twice", s.name));
            }
        }
        let mut rules = std::collections::BTreeSet::new();
        for (i, t) in self.triggers.iter().enumerate() {
            let at = format!("streams.triggers[{i}]");
            check_name(&format!("{at}.name"), &t.name)?;
            if !rules.insert(t.name.as_str()) {
                return Err(format!("{at}.name: '{}' twice", t.name));
            }
            let source = self.sources.iter().find(|s| s.name == t.source);
            match source {
                None => return Err(format!("{at}.source: no source is named '{}'", t.source)),
                Some(s) if s.kind != SourceKind::Features => {
                    return Err(format!("{at}.source: '{}' does not feed a view", t.source));
                }
                Some(_) => {}
            }
            check_name(&format!("{at}.model"), &t.model)?;
            check_topic(&format!("{at}.topic"), &t.topic)?;
            cooldown(&t.cooldown).map_err(|e| format!("{at}.cooldown: {e}"))?;
        }
        Ok(())
    }
}

impl SourceConfig {
    fn check(&self, at: &str) -> Result<(), String> {
        check_name(&format!("{at}.name"), &self.name)?;
        check_topic(&format!("{at}.topic"), &self.topic)?;
        match self.kind {
            SourceKind::Features => check_name(&format!("{at}.view"), &self.view)?,
            SourceKind::Outcomes => check_name(&format!("{at}.model"), &self.model)?,
        }
        if !matches!(self.format.as_str(), "" | "json") {
            return Err(format!("{at}.format: only json is read"));
        }
        if !matches!(self.timestamp_unit.as_str(), "" | "s" | "ms" | "us") {
            return Err(format!("{at}.timestamp_unit: s, ms or us"));
        }
        if !self.dead_letter_topic.is_empty() {
            check_topic(&format!("{at}.dead_letter_topic"), &self.dead_letter_topic)?;
            if self.dead_letter_topic == self.topic {
                return Err(format!(
                    "{at}.dead_letter_topic: not the source's own topic"
                ));
            }
        }
        Ok(())
    }
}

/// A trigger's cooldown as a duration (`24h`, `90m`).
pub fn cooldown(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn check_name(key: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key}: '{name}' must be 1-128 letters, digits, '_', '-' or '.'"
        ))
    }
}

/// Kafka's own rule for topic names: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(key: &str, topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key}: '{topic}' is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> StreamsConfig {
        StreamsConfig {
            brokers: vec!["127.0.0.1:9092".into()],
            sources: vec![SourceConfig {
                name: "deliveries".into(),
                topic: "deliveries".into(),
                view: "orders".into(),
                ..SourceConfig::default()
            }],
            triggers: vec![TriggerConfig {
                name: "late".into(),
                source: "deliveries".into(),
                topic: "interventions".into(),
                ..TriggerConfig::default()
            }],
            ..StreamsConfig::default()
        }
    }

    #[test]
    fn a_good_section_passes_and_each_mistake_is_named() {
        assert_eq!(config().check(), Ok(()));
        let refused = |f: &dyn Fn(&mut StreamsConfig)| {
            let mut c = config();
            f(&mut c);
            c.check().expect_err("refused")
        };
        assert!(refused(&|c| c.brokers.clear()).starts_with("streams.brokers"));
        assert!(refused(&|c| c.sources[0].topic = "a b".into()).contains("sources[0].topic"));
        assert!(refused(&|c| c.triggers[0].source = "x".into()).contains("triggers[0].source"));
        assert!(refused(&|c| c.triggers[0].cooldown = "soon".into()).contains("cooldown"));
        assert!(refused(&|c| c.index = 1).starts_with("streams.index"));
        assert!(refused(&|c| c.sources[0].format = "avro".into()).contains("format"));
        assert!(
            refused(&|c| c.sources[0].dead_letter_topic = "deliveries".into())
                .contains("dead_letter_topic")
        );
    }

    #[test]
    fn the_index_comes_from_config_or_the_statefulsets_ordinal() {
        let mut c = config();
        assert_eq!(c.replica_index(Some("laptop-7")), Some(0), "one replica");
        c.replicas = 3;
        assert_eq!(c.replica_index(Some("mercator-streams-2")), Some(2));
        assert_eq!(
            c.replica_index(Some("mercator-streams-3")),
            None,
            "past replicas"
        );
        assert_eq!(c.replica_index(Some("laptop")), Some(0));
        assert_eq!(c.replica_index(None), Some(0));
        c.index = 1;
        assert_eq!(c.replica_index(Some("mercator-streams-2")), Some(1));
    }
}
