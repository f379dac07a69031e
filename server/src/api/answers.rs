//! Knowledge-base answers for `Intent/Classify`: an intent model whose manifest names a
//! `knowledge_base` (a model of the `kb` kind, built by `mercator kb load` with this
//! model's encoder) answers with the passages nearest the message (exact cosine search
//! over the knowledge base's champion) when asked (`answer_top_k`), and for the intents
//! marked `answer_from_kb` answers from them instead of handing off, when the best
//! passage is at least `kb_min_score` similar.

use mercator_runtime::manifest::sections::IntentSettings;

use crate::error::ServeError;
use crate::serving::Serving;

/// Passages searched for an `answer_from_kb` intent when the request asks for none.
const DEFAULT_ANSWERS: usize = 3;

/// A passage that answers the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The passage's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub text: String,
    /// Where it is published.
    pub url: String,
    /// Cosine similarity to the message.
    pub score: f64,
}

/// Whether the message's embedding is needed: the model has a knowledge base and the
/// request asks for answers or some intent answers from it.
pub fn needs_embedding(settings: &IntentSettings, answer_top_k: u32) -> bool {
    settings.knowledge_base.is_some() && (answer_top_k > 0 || !settings.answer_from_kb.is_empty())
}

/// How many passages to search for: those asked for, or a few for an intent that
/// answers from the knowledge base.
pub fn how_many(settings: &IntentSettings, answer_top_k: u32, top: &str) -> usize {
    match answer_top_k {
        0 if settings.answer_from_kb.iter().any(|i| i == top) => DEFAULT_ANSWERS,
        k => usize::try_from(k).unwrap_or(usize::MAX).min(100),
    }
}

/// The `k` passages of the knowledge base `name` nearest `embedding`.
pub fn search(
    serving: &Serving,
    name: &str,
    embedding: &[f32],
    k: usize,
) -> Result<Vec<Answer>, ServeError> {
    let kb = serving.models.resolve(name, "").map_err(|e| {
        ServeError::FailedPrecondition(format!("knowledge base '{name}' is not served here: {e}"))
    })?;
    let searcher = kb.model.searcher().ok_or_else(|| {
        ServeError::FailedPrecondition(format!("model '{name}' is not a knowledge base"))
    })?;
    let hits = searcher.search(embedding, k).map_err(|e| {
        ServeError::FailedPrecondition(format!(
            "knowledge base '{name}' was not embedded by this encoder: {e}"
        ))
    })?;
    Ok(hits
        .into_iter()
        .map(|h| Answer {
            id: h.passage.id.clone(),
            title: h.passage.title.clone(),
            text: h.passage.text.clone(),
            url: h.passage.url.clone(),
            score: f64::from(h.score),
        })
        .collect())
}
