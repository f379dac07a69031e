//! The manifest sections the server's typed APIs read, parsed and checked once, here: at
//! registration (through [`Manifest::parse`], so a bad section refuses the version) and
//! at load (the loaded version carries the typed values). No request re-reads the JSON.
//!
//! - `labels`, `actions`, `handoff_threshold`, `handoff_intents` of a `text` model: how
//!   `Intent/Classify` names, maps and hands off intents ([`IntentSettings`]);
//! - `history`: where the feature store keeps a forecaster's sales ([`HistoryBinding`]);
//! - `risk_bands`: how `Churn/Score` bands a probability ([`RiskBand`]);
//! - `dynamic_batching`: whether and how requests are merged ([`DynamicBatching`]);
//! - `runbook`: the action each churn score calls for ([`Runbook`]);
//! - `quality`: how predictions are judged against outcomes ([`Quality`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::batching::DynamicBatching;
use super::quality::Quality;
use super::runbook::Runbook;
use super::{Manifest, RiskBand};
use crate::{DType, Result, RuntimeError};

/// A version's typed sections; absent sections are `None` (the API that needs one then
/// refuses the request with a message that says what is missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sections {
    /// Intent settings, for `text` models whose manifest lists `labels`.
    pub intent: Option<IntentSettings>,
    /// The sales history binding, when the manifest has a `history` section.
    pub history: Option<HistoryBinding>,
    /// Risk bands, lowest threshold first; empty when the manifest has none.
    pub risk_bands: Vec<RiskBand>,
    /// How requests are merged, when the manifest has a `dynamic_batching` section.
    pub batching: Option<DynamicBatching>,
    /// The churn runbook, when the manifest has one.
    pub runbook: Option<Runbook>,
    /// How predictions are judged, when the manifest has a `quality` section.
    pub quality: Option<Quality>,
    /// The share of calls the prediction log keeps, when the manifest says.
    pub log_sampling: Option<f64>,
}

impl Sections {
    /// Parses and checks the sections of `manifest`.
    pub fn of(manifest: &Manifest) -> Result<Sections> {
        let risk_bands = manifest.risk_bands()?;
        Ok(Sections {
            intent: IntentSettings::of(manifest)?,
            history: HistoryBinding::of(manifest)?,
            runbook: Runbook::of(manifest, &risk_bands)?,
            risk_bands,
            batching: DynamicBatching::of(manifest)?,
            quality: Quality::of(manifest)?,
            log_sampling: super::quality::log_sampling(manifest)?,
        })
    }
}

/// What a text model's manifest says about intents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IntentSettings {
    /// One label per column of the first output, in column order.
    pub labels: Vec<String>,
    /// The action each intent maps to (intents without one map to none).
    #[serde(default)]
    pub actions: BTreeMap<String, String>,
    /// Below this top probability the conversation goes to a human.
    #[serde(default = "default_threshold")]
    pub handoff_threshold: f64,
    /// Intents that always go to a human.
    #[serde(default = "default_handoff_intents")]
    pub handoff_intents: Vec<String>,
    /// The details intents need (`slots`, `intent_slots`), when the manifest declares them.
    #[serde(skip)]
    pub slots: Option<super::slots::Slots>,
    /// How a conversation (`session_id`) is remembered and when it goes to a person.
    #[serde(default)]
    pub conversation: Conversation,
    /// The knowledge base (a `kb` model) answers are searched in.
    #[serde(default)]
    pub knowledge_base: Option<String>,
    /// Intents answered from the knowledge base instead of handed off.
    #[serde(default)]
    pub answer_from_kb: Vec<String>,
    /// The least similarity of a passage that answers an `answer_from_kb` intent.
    #[serde(default = "default_kb_min_score")]
    pub kb_min_score: f64,
}

fn default_kb_min_score() -> f64 {
    0.3
}

/// The manifest's `conversation`: what a session remembers, for how long, and when its
/// failures hand it to a person (reason `repeated_failure`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    /// How long a quiet conversation is remembered (`30m`, `2h`).
    #[serde(default = "default_ttl")]
    pub ttl: String,
    /// Low-confidence turns in a row that hand off.
    #[serde(default = "default_low_confidence_run")]
    pub low_confidence_turns: u32,
    /// Failed turns in all (low confidence, or asked for a detail again) that hand off.
    #[serde(default = "default_failed_turns")]
    pub failed_turns: u32,
    /// `ttl`, parsed once when the section is checked.
    #[serde(skip)]
    parsed_ttl: std::time::Duration,
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            ttl: default_ttl(),
            low_confidence_turns: default_low_confidence_run(),
            failed_turns: default_failed_turns(),
            parsed_ttl: std::time::Duration::from_secs(30 * 60),
        }
    }
}

impl Conversation {
    /// How long a quiet conversation is remembered.
    pub fn ttl(&self) -> std::time::Duration {
        self.parsed_ttl
    }
}

fn default_ttl() -> String {
    "30m".into()
}

fn default_low_confidence_run() -> u32 {
    2
}

fn default_failed_turns() -> u32 {
    3
}

fn default_threshold() -> f64 {
    0.5
}

fn default_handoff_intents() -> Vec<String> {
    vec!["talk_to_human".into()]
}

/// Keys of the manifest that belong to the intent section.
const INTENT_KEYS: [&str; 8] = [
    "labels",
    "actions",
    "handoff_threshold",
    "handoff_intents",
    "conversation",
    "knowledge_base",
    "answer_from_kb",
    "kb_min_score",
];

impl IntentSettings {
    /// The section of a `text` or `encoder` model that lists `labels`: it must take one
    /// BYTES input and give `[-1, labels]` probabilities first.
    fn of(manifest: &Manifest) -> Result<Option<IntentSettings>> {
        let classifies = matches!(manifest.kind.as_str(), "text" | "encoder");
        if !classifies || !manifest.extra.contains_key("labels") {
            return Ok(None);
        }
        let fail = |m: String| RuntimeError::Signature(format!("intent settings: {m}"));
        let section = serde_json::Value::Object(
            INTENT_KEYS
                .iter()
                .filter_map(|k| Some((k.to_string(), manifest.extra.get(*k)?.clone())))
                .collect(),
        );
        let mut s: IntentSettings =
            serde_json::from_value(section).map_err(|e| fail(e.to_string()))?;
        s.slots = super::slots::Slots::of(&manifest.extra, &s.labels)?;
        let ttl = super::quality::parse_duration(&s.conversation.ttl)
            .map_err(|e| fail(format!("conversation.ttl: {e}")))?;
        s.conversation.parsed_ttl = std::time::Duration::from_micros(ttl.unsigned_abs());
        if let Some(i) = s.answer_from_kb.iter().find(|i| !s.labels.contains(i)) {
            return Err(fail(format!(
                "answer_from_kb: '{i}' is not one of the labels"
            )));
        }
        if !s.answer_from_kb.is_empty() && s.knowledge_base.is_none() {
            return Err(fail(
                "answer_from_kb: name the knowledge base (\"knowledge_base\": \"…\")".into(),
            ));
        }
        if !(-1.0..=1.0).contains(&s.kb_min_score) {
            return Err(fail("kb_min_score: a cosine similarity in [-1, 1]".into()));
        }
        if s.conversation.low_confidence_turns == 0 || s.conversation.failed_turns == 0 {
            return Err(fail(
                "conversation: low_confidence_turns and failed_turns are at least 1".into(),
            ));
        }
        if manifest.inputs.len() != 1 || manifest.inputs[0].datatype != DType::Bytes {
            return Err(fail(
                "the model must take one BYTES input (the text)".into(),
            ));
        }
        let width = manifest
            .outputs
            .first()
            .and_then(|o| o.shape.get(1).copied());
        if width != Some(s.labels.len() as i64) {
            return Err(fail(format!(
                "the first output is not [-1, {}] for the {} labels",
                s.labels.len(),
                s.labels.len()
            )));
        }
        Ok(Some(s))
    }
}

/// The manifest's `history` section: where the feature store keeps a series' sales.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryBinding {
    /// `view:field` of the daily values (a `float32_list`, oldest first).
    pub values: String,
    /// `view:field` of the last value's date (a `string`, `YYYY-MM-DD`).
    pub last_date: String,
}

impl HistoryBinding {
    /// Parses the section, if the manifest has one; both fields must be of one view.
    pub fn of(manifest: &Manifest) -> Result<Option<HistoryBinding>> {
        let Some(v) = manifest.extra.get("history") else {
            return Ok(None);
        };
        let fail = |m: String| RuntimeError::Signature(format!("history: {m}"));
        let b: HistoryBinding =
            serde_json::from_value(v.clone()).map_err(|e| fail(e.to_string()))?;
        match (b.values.split_once(':'), b.last_date.split_once(':')) {
            (Some((v1, f1)), Some((v2, f2)))
                if v1 == v2 && !v1.is_empty() && !f1.is_empty() && !f2.is_empty() =>
            {
                Ok(Some(b))
            }
            _ => Err(fail(
                "values and last_date must be view:field of one view".into(),
            )),
        }
    }

    /// The view holding the history.
    pub fn view(&self) -> &str {
        self.values.split_once(':').map_or("", |(v, _)| v)
    }

    /// The field holding the daily values.
    pub fn values_field(&self) -> &str {
        self.values.split_once(':').map_or("", |(_, f)| f)
    }

    /// The field holding the last value's date.
    pub fn last_date_field(&self) -> &str {
        self.last_date.split_once(':').map_or("", |(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: serde_json::Value, kind: &str, input: &str, width: i64) -> Manifest {
        let mut m = serde_json::json!({
            "kind": kind, "weights": "w",
            "inputs": [{"name": "text", "datatype": input, "shape": [-1]}],
            "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, width]}],
        });
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        serde_json::from_value(m).expect("manifest")
    }

    #[test]
    fn intent_settings_are_checked_against_the_signature() {
        let labels = serde_json::json!({"labels": ["a", "b"], "actions": {"a": "x"}});
        let ok = IntentSettings::of(&manifest(labels.clone(), "text", "BYTES", 2))
            .expect("parses")
            .expect("present");
        assert_eq!(ok.handoff_threshold, 0.5);
        assert_eq!(ok.handoff_intents, ["talk_to_human"]);
        for (m, needle) in [
            (manifest(labels.clone(), "text", "BYTES", 3), "[-1, 2]"),
            (manifest(labels.clone(), "text", "FP32", 2), "BYTES"),
            (
                manifest(serde_json::json!({"labels": "a"}), "text", "BYTES", 2),
                "intent settings",
            ),
        ] {
            let err = IntentSettings::of(&m).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
        }
        // Other kinds may use `labels` for their own outputs (drift reads them).
        assert_eq!(
            IntentSettings::of(&manifest(labels, "candle", "FP32", 3)).expect("ok"),
            None
        );
    }

    #[test]
    fn history_binding_names_one_view() {
        let with =
            |h: serde_json::Value| manifest(serde_json::json!({"history": h}), "ets", "FP32", 1);
        let b = HistoryBinding::of(&with(
            serde_json::json!({"values": "sales:daily", "last_date": "sales:last"}),
        ))
        .expect("ok")
        .expect("present");
        assert_eq!(
            (b.view(), b.values_field(), b.last_date_field()),
            ("sales", "daily", "last")
        );
        for bad in [
            serde_json::json!({"values": "sales:daily", "last_date": "other:last"}),
            serde_json::json!({"values": "daily", "last_date": "sales:last"}),
            serde_json::json!({"values": "sales:daily"}),
            serde_json::json!({"values": "a:b", "last_date": "a:c", "extra": 1}),
        ] {
            assert!(HistoryBinding::of(&with(bad.clone())).is_err(), "{bad}");
        }
    }
}
