//! A chatbot conversation remembered across turns: with a `session_id`, `Intent/Classify`
//! keeps the turn count, the last intents, the details (slots) given so far and the
//! failures in the online store (embedded, or Redis so every replica sees the same
//! conversation) for the manifest's `conversation.ttl`, restarted by each turn. A
//! follow-up ("and when will it arrive?") keeps the order number an earlier turn gave;
//! `low_confidence_turns` low-confidence turns in a row, or `failed_turns` failed turns
//! in all (low confidence, or the bot asking again for a detail it already asked for),
//! hand the conversation to a person with reason `repeated_failure`.

use std::collections::BTreeMap;

use mercator_runtime::manifest::sections::Conversation as Settings;
use mercator_runtime::manifest::slots::Found;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use crate::serving::Serving;

/// Intents remembered, newest last.
const LAST_INTENTS: usize = 5;

/// What a conversation remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    turns: u32,
    intents: Vec<String>,
    /// Slot name → (value, the text it was read from).
    slots: BTreeMap<String, (String, String)>,
    low_confidence_run: u32,
    failed_turns: u32,
    /// The detail the last turn asked for.
    asked: Option<String>,
}

/// One conversation, loaded for a turn.
#[derive(Debug)]
pub struct Conversation {
    key: String,
    state: State,
}

/// What a turn adds to the conversation.
pub struct Turn<'a> {
    /// The top intent.
    pub intent: &'a str,
    /// Whether it was under the hand-off threshold.
    pub low_confidence: bool,
    /// The detail the bot asks for now, if any.
    pub asks: Option<&'a str>,
}

impl Conversation {
    /// The conversation of `session` with `model`, or a new one (also when what was
    /// stored cannot be read: a conversation is not worth failing a turn for).
    pub async fn open(
        serving: &Serving,
        model: &str,
        session: &str,
    ) -> Result<Conversation, ServeError> {
        let key = format!("intent:{model}:{session}");
        let stored = serving
            .features
            .get_state(&key)
            .await
            .map_err(|e| ServeError::Unavailable(format!("conversation state: {e}")))?;
        let state = stored
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(Conversation { key, state })
    }

    /// This turn's number (1 for the first).
    pub fn turn_number(&self) -> u32 {
        self.state.turns + 1
    }

    /// The slots of this message, then those earlier turns gave that it does not.
    pub fn with_remembered(&self, found: Vec<Found>) -> Vec<Found> {
        let mut all = found;
        for (name, (value, text)) in &self.state.slots {
            if !all.iter().any(|f| &f.name == name) {
                all.push(Found {
                    name: name.clone(),
                    value: value.clone(),
                    text: text.clone(),
                    start: 0,
                    end: 0,
                    remembered: true,
                });
            }
        }
        all
    }

    /// Records the turn; whether the conversation has now failed often enough to go to
    /// a person.
    pub fn record(&mut self, turn: &Turn<'_>, slots: &[Found], settings: &Settings) -> bool {
        let s = &mut self.state;
        s.turns += 1;
        s.intents.push(turn.intent.to_string());
        if s.intents.len() > LAST_INTENTS {
            s.intents.remove(0);
        }
        for f in slots {
            s.slots
                .insert(f.name.clone(), (f.value.clone(), f.text.clone()));
        }
        s.low_confidence_run = if turn.low_confidence {
            s.low_confidence_run + 1
        } else {
            0
        };
        let asked_again = turn.asks.is_some() && turn.asks == s.asked.as_deref();
        if turn.low_confidence || asked_again {
            s.failed_turns += 1;
        }
        s.asked = turn.asks.map(String::from);
        s.low_confidence_run >= settings.low_confidence_turns
            || s.failed_turns >= settings.failed_turns
    }

    /// Stores the conversation for another `ttl`.
    pub async fn save(&self, serving: &Serving, settings: &Settings) -> Result<(), ServeError> {
        let bytes = serde_json::to_vec(&self.state)
            .map_err(|e| ServeError::Internal(format!("conversation state: {e}")))?;
        serving
            .features
            .put_state(&self.key, &bytes, settings.ttl())
            .await
            .map_err(|e| ServeError::Unavailable(format!("conversation state: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> Conversation {
        Conversation {
            key: "k".into(),
            state: State::default(),
        }
    }

    #[test]
    fn failures_in_a_row_or_in_all_hand_off() {
        let settings = Settings::default();
        let mut c = conversation();
        let low = Turn {
            intent: "order_status",
            low_confidence: true,
            asks: None,
        };
        assert!(!c.record(&low, &[], &settings), "one low-confidence turn");
        assert!(c.record(&low, &[], &settings), "two in a row");
        // In all: low, fine, asked, asked again (the third failure).
        let mut c = conversation();
        let fine = Turn {
            intent: "return_item",
            low_confidence: false,
            asks: Some("order_number"),
        };
        assert!(!c.record(&low, &[], &settings));
        assert!(!c.record(&fine, &[], &settings));
        assert!(
            !c.record(&fine, &[], &settings),
            "asked again: a second failure"
        );
        assert!(c.record(&fine, &[], &settings), "and a third");
        assert_eq!(c.turn_number(), 5);
    }

    #[test]
    fn slots_given_earlier_are_remembered_unless_given_again() {
        let mut c = conversation();
        let found = |name: &str, value: &str| Found {
            name: name.into(),
            value: value.into(),
            text: value.into(),
            start: 3,
            end: 8,
            remembered: false,
        };
        let turn = Turn {
            intent: "order_status",
            low_confidence: false,
            asks: None,
        };
        c.record(
            &turn,
            &[found("order_number", "58213")],
            &Settings::default(),
        );
        let now = c.with_remembered(vec![found("email", "a@b.c")]);
        assert_eq!(now.len(), 2);
        assert!(now[1].remembered && now[1].value == "58213" && now[1].start == 0);
        let again = c.with_remembered(vec![found("order_number", "11111")]);
        assert_eq!(again.len(), 1);
        assert!(!again[0].remembered);
    }
}
