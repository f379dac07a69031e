//! Sentence encoders (kind `encoder`): a BERT-family transformer (candle-transformers'
//! BERT: BERT, MiniLM and the other models saved as `BertModel`) over the tokens of
//! the shipped `tokenizer.json` (the `tokenizers` crate, the library Python's
//! `tokenizers` wraps), pooled to one vector per text as sentence-transformers does it,
//! then optionally a classification head (a candle net from safetensors: a logistic
//! regression is one linear layer and a softmax).
//!
//! Step by step, as `sentence_transformers` computes `encode`:
//! 1. tokens with the special ones (`[CLS] … [SEP]`), cut at `max_length` (its
//!    `max_seq_length`);
//! 2. the transformer's last hidden state, padding masked out of attention;
//! 3. pooling: `mean` (the tokens' mean under the attention mask, the count clamped at
//!    1e-9) or `cls` (the first token's vector);
//! 4. with `normalize`, L2 normalisation (the norm clamped at 1e-12, as
//!    `torch.nn.functional.normalize`).
//!
//! ```json
//! "encoder": {"config": "config.json", "tokenizer": "tokenizer.json", "pooling": "mean",
//!             "normalize": true, "max_length": 256,
//!             "head": {"weights": "head.safetensors",
//!                      "layers": [{"type": "linear", "weight": "w", "bias": "b"},
//!                                 {"type": "softmax"}]}}
//! ```
//!
//! Outputs: the one named `embedding_output` (default `embedding`, `[-1, hidden]`) is the
//! pooled vector; another, if any, is the head's.

use candle_core::{DType as CDType, Device, Tensor as CTensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::kinds::candle::{CandleModel, LayerSpec};
use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the tokens' vectors under the attention mask.
    #[default]
    Mean,
    /// The first token's (`[CLS]`) vector.
    Cls,
}

/// The classification head over the pooled vector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// The safetensors file of its weights.
    pub weights: String,
    /// Its layers, as a `candle` manifest lists them.
    pub layers: Vec<LayerSpec>,
}

/// The manifest's `encoder` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// The transformer's `config.json`.
    pub config: String,
    /// The `tokenizer.json`.
    pub tokenizer: String,
    /// Mean or CLS pooling.
    #[serde(default)]
    pub pooling: Pooling,
    /// Whether the pooled vector is L2-normalised.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Tokens kept per text, special ones included (longer texts are cut).
    pub max_length: usize,
    /// Longest text accepted, in characters; longer ones are refused.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// The classification head, if any.
    #[serde(default)]
    pub head: Option<HeadSpec>,
    /// The output that carries the pooled vector.
    #[serde(default = "default_embedding")]
    pub embedding_output: String,
}

fn yes() -> bool {
    true
}

fn default_max_chars() -> usize {
    10_000
}

fn default_embedding() -> String {
    "embedding".into()
}

impl EncoderSpec {
    /// The manifest's `encoder` section.
    pub fn from_manifest(
        extra: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<EncoderSpec> {
        let value = extra.get("encoder").ok_or_else(|| {
            RuntimeError::Signature("an encoder manifest has an 'encoder' section".into())
        })?;
        let spec: EncoderSpec = serde_json::from_value(value.clone())
            .map_err(|e| RuntimeError::Signature(format!("encoder: {e}")))?;
        if spec.max_length < 2 {
            return Err(RuntimeError::Signature(
                "encoder.max_length: at least 2 (the special tokens)".into(),
            ));
        }
        Ok(spec)
    }

    /// The files the section names, besides the weights.
    pub fn files(&self) -> Vec<&str> {
        let mut files = vec![self.config.as_str(), self.tokenizer.as_str()];
        files.extend(self.head.as_ref().map(|h| h.weights.as_str()));
        files
    }
}

fn artifact(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::artifact(e.to_string())
}

/// A sentence encoder, with its head when it has one.
pub struct EncoderModel {
    tokenizer: Tokenizer,
    bert: BertModel,
    spec: EncoderSpec,
    hidden: usize,
    head: Option<CandleModel>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    /// Index of the embedding output, and of the head's.
    embedding_at: Option<usize>,
    head_at: Option<usize>,
}

impl std::fmt::Debug for EncoderModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderModel")
            .field("spec", &self.spec)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

impl EncoderModel {
    /// Builds the encoder from the version's files (`file` gives one by name).
    pub fn load(
        spec: EncoderSpec,
        weights: &[u8],
        file: &dyn Fn(&str) -> Option<Vec<u8>>,
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
    ) -> Result<EncoderModel> {
        let need = |field: &str, name: &str| {
            file(name).ok_or_else(|| {
                RuntimeError::artifact(format!(
                    "encoder.{field} names '{name}', which is not among the version's files"
                ))
            })
        };
        let [input] = inputs.as_slice() else {
            return Err(RuntimeError::Signature("an encoder takes one input".into()));
        };
        if input.datatype != DType::Bytes || input.shape.len() != 1 {
            return Err(RuntimeError::Signature(format!(
                "input '{}' must be BYTES [-1] (one UTF-8 text per row)",
                input.name
            )));
        }
        let config: Config = serde_json::from_slice(&need("config", &spec.config)?)
            .map_err(|e| artifact(format!("{}: not a BERT config: {e}", spec.config)))?;
        let hidden = config.hidden_size;
        if spec.max_length > config.max_position_embeddings {
            return Err(RuntimeError::Signature(format!(
                "encoder.max_length {} exceeds the model's {} positions",
                spec.max_length, config.max_position_embeddings
            )));
        }
        let mut tokenizer = Tokenizer::from_bytes(need("tokenizer", &spec.tokenizer)?)
            .map_err(|e| artifact(format!("{}: {e}", spec.tokenizer)))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: spec.max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(artifact)?;
        tokenizer.with_padding(None);
        let vb = VarBuilder::from_buffered_safetensors(weights.to_vec(), CDType::F32, &Device::Cpu)
            .map_err(artifact)?;
        let bert = BertModel::load(vb, &config)
            .map_err(|e| artifact(format!("the weights are not this BERT's: {e}")))?;
        let embedding_at = outputs.iter().position(|o| o.name == spec.embedding_output);
        if let Some(k) = embedding_at
            && outputs[k].shape != [-1, hidden as i64]
        {
            return Err(RuntimeError::Signature(format!(
                "output '{}' (the embedding) must have shape [-1, {hidden}]",
                outputs[k].name
            )));
        }
        let others: Vec<usize> = (0..outputs.len())
            .filter(|&k| Some(k) != embedding_at)
            .collect();
        let (head, head_at) = match (&spec.head, others.as_slice()) {
            (None, []) => (None, None),
            (Some(h), [k]) => {
                let embedding = TensorSpec {
                    name: "embedding".into(),
                    datatype: DType::F32,
                    shape: vec![-1, hidden as i64],
                    allow_nan: false,
                };
                let net = CandleModel::load(
                    &need("head.weights", &h.weights)?,
                    &h.layers,
                    vec![embedding],
                    vec![outputs[*k].clone()],
                )
                .map_err(|e| RuntimeError::Signature(format!("encoder.head: {e}")))?;
                (Some(net), Some(*k))
            }
            (None, _) => {
                return Err(RuntimeError::Signature(format!(
                    "without a head an encoder's one output is '{}'",
                    spec.embedding_output
                )));
            }
            (Some(_), _) => {
                return Err(RuntimeError::Signature(format!(
                    "an encoder with a head has its output and at most '{}' beside it",
                    spec.embedding_output
                )));
            }
        };
        if outputs
            .iter()
            .any(|o| !matches!(o.datatype, DType::F32 | DType::F64))
        {
            return Err(RuntimeError::Signature(
                "an encoder's outputs are FP32 or FP64".into(),
            ));
        }
        Ok(EncoderModel {
            tokenizer,
            bert,
            spec,
            hidden,
            head,
            inputs,
            outputs,
            embedding_at,
            head_at,
        })
    }

    /// The token ids of a text as the model reads it (special tokens added, cut at
    /// `max_length`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| RuntimeError::input(&self.inputs[0].name, e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The pooled (and normalised) vector of each text, row-major `[texts, hidden]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let name = &self.inputs[0].name;
        let mut encodings = Vec::with_capacity(texts.len());
        for (r, text) in texts.iter().enumerate() {
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
            encodings.push(
                self.tokenizer
                    .encode(*text, true)
                    .map_err(|e| RuntimeError::input(name, format!("row {r}: {e}")))?,
            );
        }
        let rows = encodings.len();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let width = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; rows * width];
        let mut types = vec![0u32; rows * width];
        let mut mask = vec![0u32; rows * width];
        for (r, e) in encodings.iter().enumerate() {
            let at = r * width;
            ids[at..at + e.len()].copy_from_slice(e.get_ids());
            types[at..at + e.len()].copy_from_slice(e.get_type_ids());
            mask[at..at + e.len()].copy_from_slice(e.get_attention_mask());
        }
        let tensor = |v: Vec<u32>| CTensor::from_vec(v, (rows, width), &Device::Cpu);
        let hidden_states = self
            .bert
            .forward(
                &tensor(ids).map_err(artifact)?,
                &tensor(types).map_err(artifact)?,
                Some(&tensor(mask.clone()).map_err(artifact)?),
            )
            .and_then(|h| h.flatten_all()?.to_vec1::<f32>())
            .map_err(artifact)?;
        Ok(pool(
            &hidden_states,
            &mask,
            rows,
            width,
            self.hidden,
            self.spec.pooling,
            self.spec.normalize,
        ))
    }
}

/// Pools `[rows, width, hidden]` token vectors under `mask` into `[rows, hidden]`.
fn pool(
    states: &[f32],
    mask: &[u32],
    rows: usize,
    width: usize,
    hidden: usize,
    pooling: Pooling,
    normalize: bool,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * hidden];
    for (r, vector) in out.chunks_exact_mut(hidden).enumerate() {
        let tokens = &states[r * width * hidden..(r + 1) * width * hidden];
        match pooling {
            Pooling::Cls => vector.copy_from_slice(&tokens[..hidden]),
            Pooling::Mean => {
                let mut count = 0f32;
                for (t, token) in tokens.chunks_exact(hidden).enumerate() {
                    if mask[r * width + t] == 0 {
                        continue;
                    }
                    count += 1.0;
                    for (v, x) in vector.iter_mut().zip(token) {
                        *v += x;
                    }
                }
                let count = count.max(1e-9);
                vector.iter_mut().for_each(|v| *v /= count);
            }
        }
        if normalize {
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            vector.iter_mut().for_each(|v| *v /= norm);
        }
    }
    out
}

impl Model for EncoderModel {
    fn kind(&self) -> &'static str {
        "encoder"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let name = &self.inputs[0].name;
        let [
            Tensor {
                data: TensorData::Bytes(rows),
                ..
            },
        ] = inputs
        else {
            return Err(RuntimeError::input(
                name,
                "must be one BYTES tensor of texts",
            ));
        };
        let texts = rows
            .iter()
            .enumerate()
            .map(|(r, b)| {
                std::str::from_utf8(b)
                    .map_err(|_| RuntimeError::input(name, format!("row {r} is not UTF-8")))
            })
            .collect::<Result<Vec<&str>>>()?;
        let n = texts.len();
        let embedding = Tensor::new(vec![n, self.hidden], TensorData::F32(self.embed(&texts)?))?;
        wanted
            .iter()
            .map(|&k| {
                let spec = crate::tensor::output_spec(&self.outputs, k)?;
                if Some(k) == self.embedding_at {
                    let TensorData::F32(v) = &embedding.data else {
                        return Err(RuntimeError::UnknownOutput(spec.name.clone()));
                    };
                    let data = TensorData::from_f32(v.clone(), spec.datatype)
                        .ok_or_else(|| RuntimeError::UnknownOutput(spec.name.clone()))?;
                    return Tensor::new(vec![n, self.hidden], data);
                }
                match (&self.head, self.head_at) {
                    (Some(head), Some(h)) if h == k => head
                        .infer(std::slice::from_ref(&embedding), &[0])?
                        .pop()
                        .ok_or_else(|| RuntimeError::UnknownOutput(spec.name.clone())),
                    _ => Err(RuntimeError::UnknownOutput(spec.name.clone())),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_skips_padding_and_normalises() {
        // Two rows of two tokens, hidden 2; the second row's second token is padding.
        let states = [1.0, 0.0, 3.0, 4.0, 6.0, 8.0, 100.0, 100.0];
        let mask = [1, 1, 1, 0];
        let raw = pool(&states, &mask, 2, 2, 2, Pooling::Mean, false);
        assert_eq!(raw, [2.0, 2.0, 6.0, 8.0]);
        let unit = pool(&states, &mask, 2, 2, 2, Pooling::Mean, true);
        assert!((unit[2] - 0.6).abs() < 1e-6 && (unit[3] - 0.8).abs() < 1e-6);
        let cls = pool(&states, &mask, 2, 2, 2, Pooling::Cls, false);
        assert_eq!(cls, [1.0, 0.0, 6.0, 8.0]);
    }
}
