//! Intent classification for the support chatbot: one message through a `text` model,
//! the intents ranked by probability with the manifest's labels, the action mapped to the
//! top intent, and a hand-off decision from the manifest's threshold and hand-off intents.

use std::sync::Arc;

use mercator_runtime::manifest::sections::IntentSettings;
use mercator_runtime::{Tensor, TensorData};

use super::conversation::{Conversation, Turn};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{CallContext, Method, Serving, ShadowPolicy, Target};

/// Model classified with when a request names none.
pub const DEFAULT_MODEL: &str = "intent";
/// The `method` label of `Intent/Classify`.
pub const CLASSIFY: &str = "Intent.Classify";

/// A customer's message to classify.
#[derive(Debug, Clone, Default)]
pub struct ClassifyRequest {
    /// The model; empty for [`DEFAULT_MODEL`].
    pub model: String,
    /// The version or alias; empty for the traffic split.
    pub version: String,
    /// The message, as sent (checked to be UTF-8 here).
    pub text: Vec<u8>,
    /// The conversation, which keeps a conversation on one version of a split.
    pub session_id: String,
    /// How many intents to return; 0 for all.
    pub top_k: u32,
    /// `YYYY-MM-DD` that relative dates are read from; empty for today (UTC).
    pub reference_date: String,
    /// Knowledge-base passages to answer with (0: only for `answer_from_kb` intents).
    pub answer_top_k: u32,
}

/// The intents of a message, most likely first, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The model that answered.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Intents with their probabilities, most likely first.
    pub intents: Vec<(String, f64)>,
    /// The action mapped to the top intent ("" when none is).
    pub action: String,
    /// Why the conversation goes to a person: "requested", "low_confidence", or "".
    pub handoff_reason: &'static str,
    /// The request's session, echoed.
    pub session_id: String,
    /// The declared slots the message holds, then those earlier turns gave.
    pub slots: Vec<mercator_runtime::manifest::slots::Found>,
    /// The turn of the session's conversation (0 without a session).
    pub turn: u32,
    /// The knowledge-base passages nearest the message, best first.
    pub answers: Vec<super::answers::Answer>,
    /// The slots the top intent needs that the message lacks.
    pub missing_slots: Vec<String>,
    /// The text as the model read it, when predictions are logged.
    pub seen: Option<Arc<[crate::predlog::Source]>>,
}

/// `Intent/Classify` as the envelope runs it: texts of at most `max_text_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct Classify {
    /// `limits.max_text_bytes`.
    pub max_text_bytes: usize,
}

impl Method for Classify {
    type Request = ClassifyRequest;
    type Answer = Classification;
    const NAME: &'static str = CLASSIFY;
    const SHADOWS: ShadowPolicy = ShadowPolicy::Mirror;

    fn limits(&self, req: &ClassifyRequest) -> Result<(), ServeError> {
        super::cap(
            "text",
            req.text.len(),
            "limits.max_text_bytes",
            self.max_text_bytes,
            "bytes",
        )
    }

    fn validate(&self, req: &ClassifyRequest) -> Result<(), ServeError> {
        if !req.session_id.is_empty() {
            crate::serving::lookup::check_key("session_id", &req.session_id)?;
        }
        reference_date(&req.reference_date).map(|_| ())
    }

    fn instances(&self, answer: &Classification) -> Vec<crate::predlog::Instance> {
        let top = answer.intents.first();
        vec![crate::predlog::Instance {
            outputs: crate::predlog::Outputs {
                intent: top.map(|t| t.0.clone()),
                probability: top.map(|t| t.1),
                action: Some(answer.action.clone()),
                handoff: Some(!answer.handoff_reason.is_empty()),
                ..Default::default()
            },
            entity: (!answer.session_id.is_empty()).then(|| answer.session_id.clone()),
            seen: answer
                .seen
                .as_ref()
                .map(|s| crate::predlog::Seen::row(s, 0)),
            ..Default::default()
        }]
    }

    async fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: ClassifyRequest,
    ) -> Result<Classification, ServeError> {
        classify_on(serving, &loaded, req).await
    }
}

/// The day relative dates are read from: the request's, or today (UTC).
fn reference_date(text: &str) -> Result<chrono::NaiveDate, ServeError> {
    if text.is_empty() {
        return Ok(chrono::Utc::now().date_naive());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ServeError::invalid(
            "reference_date",
            "give the day relative dates are read from as YYYY-MM-DD",
        )
    })
}

/// The version's intent settings, parsed and checked at registration and load.
fn intent_settings(loaded: &LoadedModel) -> Result<&IntentSettings, ServeError> {
    loaded.sections.intent.as_ref().ok_or_else(|| {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} cannot classify intents: it is a {} model without \
             'labels' for its outputs",
            loaded.name,
            loaded.version,
            loaded.model.kind()
        ))
    })
}

/// Answers `Intent/Classify`. A call that names no version follows the model's traffic
/// split, placed by its `session_id` when it has one (a conversation stays on one
/// version), at random otherwise.
pub async fn classify(
    serving: &Arc<Serving>,
    ctx: &CallContext,
    method: &Classify,
    req: ClassifyRequest,
) -> Result<Classification, ServeError> {
    let model = if req.model.is_empty() {
        DEFAULT_MODEL.to_string()
    } else {
        req.model.clone()
    };
    let (version, session) = (req.version.clone(), req.session_id.clone());
    let target = Target {
        model: &model,
        version: &version,
        entity: (!session.is_empty()).then_some(session.as_str()),
    };
    serving.call(ctx, method, target, req).await
}

impl crate::serving::shadow::Predicts for Classification {
    /// The top intent and its probability.
    fn predictions(&self) -> crate::serving::shadow::Predictions {
        let top = self.intents.first();
        crate::serving::shadow::Predictions {
            values: top.map(|i| i.1).into_iter().collect(),
            labels: top.map(|i| i.0.clone()).into_iter().collect(),
        }
    }
}

/// Classifies on `loaded`.
async fn classify_on(
    serving: &Serving,
    loaded: &Arc<LoadedModel>,
    req: ClassifyRequest,
) -> Result<Classification, ServeError> {
    let ClassifyRequest {
        model: _,
        version: _,
        text,
        session_id,
        top_k,
        reference_date: reference,
        answer_top_k,
    } = req;
    let Ok(message) = std::str::from_utf8(&text) else {
        return Err(ServeError::invalid("text", "the text is not valid UTF-8"));
    };
    let message = message.to_string();
    let m = intent_settings(loaded)?;
    let input = Tensor::new(vec![1], TensorData::Bytes(vec![text]))
        .map_err(|e| ServeError::Internal(e.to_string()))?;
    let seen = serving.log.is_some().then(|| {
        Arc::from(vec![crate::predlog::Source::Tensor {
            column: "input:text".into(),
            tensor: input.clone(),
        }])
    });
    // The message's embedding too, when a knowledge base may answer it.
    let embedding_output = super::answers::needs_embedding(m, answer_top_k)
        .then(|| {
            loaded
                .manifest
                .outputs
                .iter()
                .position(|o| o.name == "embedding")
        })
        .map(|at| {
            at.ok_or_else(|| {
                ServeError::FailedPrecondition(format!(
                    "model '{}' has a knowledge base but no 'embedding' output to search it with",
                    loaded.name
                ))
            })
        })
        .transpose()?;
    let wanted = std::iter::once(0).chain(embedding_output).collect();
    let mut out = serving
        .compute(loaded, vec![input], wanted, 1)
        .await
        .map_err(|e| match e {
            // The model names its input; the caller sent `text`.
            ServeError::InvalidArgument { message, .. } => ServeError::invalid("text", message),
            other => other,
        })?;
    let embedding = match embedding_output.and_then(|_| out.pop()).map(|t| t.data) {
        Some(TensorData::F32(v)) => Some(v),
        _ => None,
    };
    let probabilities: Vec<f64> = match out.into_iter().next().map(|t| t.data) {
        Some(TensorData::F32(v)) => v.into_iter().map(f64::from).collect(),
        Some(TensorData::F64(v)) => v,
        _ => {
            return Err(ServeError::Internal(
                "the output is not floating point".into(),
            ));
        }
    };
    let mut ranked: Vec<(String, f64)> = m.labels.iter().cloned().zip(probabilities).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (top, top_p) = ranked
        .first()
        .cloned()
        .ok_or_else(|| ServeError::Internal("no intents".into()))?;
    let answers = match (&m.knowledge_base, &embedding) {
        (Some(kb), Some(e)) => match super::answers::how_many(m, answer_top_k, &top) {
            0 => Vec::new(),
            k => super::answers::search(serving, kb, e, k)?,
        },
        _ => Vec::new(),
    };
    // An intent that answers from the knowledge base does, when a passage is close enough.
    let answered = m.answer_from_kb.contains(&top)
        && answers.first().is_some_and(|a| a.score >= m.kb_min_score);
    let low_confidence = top_p < m.handoff_threshold && !answered;
    let mut handoff_reason = if m.handoff_intents.contains(&top) {
        "requested"
    } else if low_confidence {
        "low_confidence"
    } else {
        ""
    };
    loaded.metrics.rows.inc();
    if top_k > 0 {
        ranked.truncate(top_k as usize);
    }
    // The details the message holds, and those the top intent still needs: the bot
    // asks for the first of them before it acts (unless a person takes over).
    // With a session, what earlier turns said counts too (`conversation.rs`).
    let mut conversation = match session_id.is_empty() {
        true => None,
        false => Some(Conversation::open(serving, &loaded.name, &session_id).await?),
    };
    let found = match &m.slots {
        Some(s) => s.find(&message, reference_date(&reference)?),
        None => Vec::new(),
    };
    let slots = match &conversation {
        Some(c) => c.with_remembered(found),
        None => found,
    };
    let missing_slots: Vec<String> = m
        .slots
        .as_ref()
        .map(|s| {
            s.missing(&top, &slots)
                .into_iter()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    // A question the knowledge base answers needs no details first.
    let asks = missing_slots
        .first()
        .filter(|_| handoff_reason.is_empty() && !answered);
    let mut turn = 0;
    if let Some(c) = conversation.as_mut() {
        turn = c.turn_number();
        let this = Turn {
            intent: &top,
            low_confidence,
            asks: asks.map(String::as_str),
        };
        if c.record(&this, &slots, &m.conversation) && handoff_reason != "requested" {
            handoff_reason = "repeated_failure";
        }
        c.save(serving, &m.conversation).await?;
    }
    let action = match asks {
        Some(slot) if handoff_reason.is_empty() => format!("ask_for_{slot}"),
        _ if answered && handoff_reason.is_empty() => "answer_from_kb".to_string(),
        _ => m.actions.get(&top).cloned().unwrap_or_default(),
    };
    Ok(Classification {
        model: loaded.name.clone(),
        version: loaded.version_label.clone(),
        turn,
        answers,
        action,
        slots,
        missing_slots,
        handoff_reason,
        intents: ranked,
        session_id,
        seen,
    })
}
