//! Text classification pipelines (kind `text`): normalise, tokenise, hash words, word
//! bigrams and character n-grams into ids, then a candle net that starts with an
//! embedding bag over those ids. Every step is specified exactly so that the Python that
//! trained the model computes the same ids (`tests/fixtures/text/make_fixtures.py` holds
//! the reference implementation):
//!
//! 1. Unicode NFKC, then lower case (full Unicode mapping).
//! 2. Tokens: maximal runs of letters, marks and numbers (general categories L*, M*, N*);
//!    each other symbol (So: emoji, ✓, ©…) is a token of its own; the rest separates.
//! 3. Features, in order: each token `w:<token>`; each pair of neighbours
//!    `b:<token> <token>` when `word_ngrams` is 2; for each token, its character n-grams
//!    for every n in `char_ngrams`, over `<token>` with boundary marks, as `c:<n-gram>`
//!    (a token shorter than n gives none).
//! 4. Id = 1 + FNV-1a-32(UTF-8 of the feature) mod `buckets`; 0 pads. At most
//!    `max_ids` ids per text (the first ones); an empty text has none.

use serde::Deserialize;
use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use crate::kinds::candle::CandleModel;
use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// The manifest's `text` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Hash buckets (ids are 1..=buckets).
    pub buckets: u32,
    /// 1 (tokens) or 2 (tokens and neighbouring pairs).
    #[serde(default = "one")]
    pub word_ngrams: u8,
    /// Character n-gram lengths.
    #[serde(default)]
    pub char_ngrams: Vec<usize>,
    /// Most ids kept per text.
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
    /// Longest text accepted, in characters; longer ones are refused, not truncated.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn one() -> u8 {
    1
}

fn default_max_ids() -> usize {
    512
}

fn default_max_chars() -> usize {
    2000
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Step 1 and 2: the tokens of a text.
pub fn tokens(text: &str) -> Vec<String> {
    let normal: String = text.nfkc().collect::<String>().to_lowercase();
    let mut out = Vec::new();
    let mut word = String::new();
    for c in normal.chars() {
        let cat = get_general_category(c);
        use GeneralCategory as G;
        let wordy = matches!(
            cat,
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::NonspacingMark
                | G::SpacingMark
                | G::EnclosingMark
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        );
        if wordy {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if cat == G::OtherSymbol {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

impl TextSpec {
    /// Steps 3 and 4: the ids of a text.
    pub fn ids(&self, text: &str) -> Vec<i64> {
        let toks = tokens(text);
        let mut ids = Vec::new();
        let push = |feature: &str, ids: &mut Vec<i64>| {
            ids.push(1 + i64::from(fnv1a32(feature.as_bytes()) % self.buckets));
        };
        for t in &toks {
            push(&format!("w:{t}"), &mut ids);
        }
        if self.word_ngrams >= 2 {
            for pair in toks.windows(2) {
                push(&format!("b:{} {}", pair[0], pair[1]), &mut ids);
            }
        }
        for t in &toks {
            let marked: Vec<char> = format!("<{t}>").chars().collect();
            for &n in &self.char_ngrams {
                if n == 0 || marked.len() < n {
                    continue;
                }
                for gram in marked.windows(n) {
                    let g: String = gram.iter().collect();
                    push(&format!("c:{g}"), &mut ids);
                }
            }
        }
        ids.truncate(self.max_ids);
        ids
    }
}

/// A text pipeline in front of a candle net.
#[derive(Debug)]
pub struct TextModel {
    spec: TextSpec,
    net: CandleModel,
    inputs: Vec<TensorSpec>,
}

impl TextModel {
    /// Builds the pipeline: `spec` from the manifest, the net over one INT64 id input.
    pub fn load(
        spec: TextSpec,
        weights: &[u8],
        layers: &[crate::kinds::candle::LayerSpec],
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
    ) -> Result<TextModel> {
        let [input] = inputs.as_slice() else {
            return Err(RuntimeError::Signature(
                "a text model takes one input".into(),
            ));
        };
        if input.datatype != DType::Bytes || input.shape.len() != 1 {
            return Err(RuntimeError::Signature(format!(
                "input '{}' must be BYTES [-1] (one UTF-8 text per row)",
                input.name
            )));
        }
        if spec.buckets == 0 || spec.max_ids == 0 {
            return Err(RuntimeError::Signature(
                "text: buckets and max_ids must be positive".into(),
            ));
        }
        let ids_spec = TensorSpec {
            name: input.name.clone(),
            datatype: DType::I64,
            shape: vec![-1, spec.max_ids as i64],
            allow_nan: false,
        };
        let net = CandleModel::load(weights, layers, vec![ids_spec], outputs)?;
        Ok(TextModel { spec, net, inputs })
    }

    /// The ids of each text, padded with 0 to `max_ids`.
    pub fn encode(&self, texts: &[Vec<u8>]) -> Result<Tensor> {
        let name = &self.inputs[0].name;
        let width = self.spec.max_ids;
        let mut ids = vec![0i64; texts.len() * width];
        for (r, bytes) in texts.iter().enumerate() {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| RuntimeError::input(name, format!("row {r} is not UTF-8")))?;
            let chars = text.chars().count();
            if chars > self.spec.max_chars {
                return Err(RuntimeError::input(
                    name,
                    format!(
                        "row {r} has {chars} characters; at most {} are accepted",
                        self.spec.max_chars
                    ),
                ));
            }
            for (slot, id) in ids[r * width..(r + 1) * width]
                .iter_mut()
                .zip(self.spec.ids(text))
            {
                *slot = id;
            }
        }
        Tensor::new(vec![texts.len(), width], TensorData::I64(ids))
    }
}

impl Model for TextModel {
    fn kind(&self) -> &'static str {
        "text"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        self.net.outputs()
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let [
            Tensor {
                data: TensorData::Bytes(texts),
                ..
            },
        ] = inputs
        else {
            return Err(RuntimeError::input(
                &self.inputs[0].name,
                "must be one BYTES tensor of texts",
            ));
        };
        self.net.infer(&[self.encode(texts)?], wanted)
    }
}

/// The manifest's `text` section.
pub fn spec_from_manifest(
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<TextSpec> {
    let value = extra
        .get("text")
        .ok_or_else(|| RuntimeError::Signature("a text manifest has a 'text' section".into()))?;
    serde_json::from_value(value.clone()).map_err(|e| RuntimeError::Signature(format!("text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_rules() {
        assert_eq!(
            tokens("Where's my ORDER #1234?"),
            ["where", "s", "my", "order", "1234"]
        );
        // The skin-tone modifier is a modifier symbol (Sk): a separator.
        assert_eq!(tokens("Café ﬁne 👍🏽!"), ["café", "fine", "👍"]);
        assert!(tokens("?!...").is_empty());
        assert!(tokens("").is_empty());
    }
}
