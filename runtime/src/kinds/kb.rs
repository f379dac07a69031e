//! Knowledge bases (kind `kb`): a shop's passages (`{"id", "title", "text", "url"}`)
//! with their embeddings by a sentence encoder, searched by exact cosine similarity. A
//! knowledge base is a model of the registry, so a new one is registered, promoted and
//! rolled back like any version; `mercator kb load` builds one with a served encoder.
//!
//! ```json
//! {"kind": "kb", "weights": "embeddings.safetensors",
//!  "inputs": [{"name": "query", "datatype": "FP32", "shape": [-1, 384]}],
//!  "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 5]},
//!              {"name": "index", "datatype": "INT64", "shape": [-1, 5]}],
//!  "kb": {"passages": "passages.jsonl", "encoder": "intent", "encoder_version": "1"}}
//! ```
//!
//! `embeddings.safetensors` holds one tensor, `embeddings`, `[passages, dim]`, each row
//! L2-normalised (as the encoder's `normalize` gives them), so the dot product is the
//! cosine. Over V2 a query vector gives the best `k` scores and passage indexes, `k`
//! the outputs' width.

use serde::{Deserialize, Serialize};

use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// One passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passage {
    /// Its id, unique in the knowledge base.
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Its text.
    pub text: String,
    /// Where it is published.
    #[serde(default)]
    pub url: String,
}

/// The manifest's `kb` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbSpec {
    /// The passages file (JSON lines).
    pub passages: String,
    /// The model whose embeddings these are (queries must be embedded by it).
    pub encoder: String,
    /// Its version.
    pub encoder_version: String,
}

impl KbSpec {
    /// The manifest's `kb` section.
    pub fn from_manifest(
        extra: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<KbSpec> {
        let v = extra
            .get("kb")
            .ok_or_else(|| RuntimeError::Signature("a kb manifest has a 'kb' section".into()))?;
        serde_json::from_value(v.clone()).map_err(|e| RuntimeError::Signature(format!("kb: {e}")))
    }
}

/// Files of a version: name and bytes.
pub type Files = Vec<(String, Vec<u8>)>;

/// A knowledge-base version: its manifest, and its files, `embeddings.safetensors` (the
/// rows of `embeddings`, `[passages, dim]`) and the passages; `k` is the V2 outputs'
/// width.
pub fn version_files(
    passages: &[Passage],
    embeddings: &[f32],
    dim: usize,
    spec: &KbSpec,
    k: usize,
) -> Result<(Vec<u8>, Files)> {
    let n = passages.len();
    if embeddings.len() != n * dim || dim == 0 {
        return Err(RuntimeError::artifact(format!(
            "{} values for {n} passages of {dim}",
            embeddings.len()
        )));
    }
    let matrix = candle_core::Tensor::from_slice(embeddings, (n, dim), &candle_core::Device::Cpu)
        .map_err(|e| RuntimeError::artifact(e.to_string()))?;
    let weights = safetensors::serialize([("embeddings", &matrix)], None)
        .map_err(|e| RuntimeError::artifact(e.to_string()))?;
    let mut lines = Vec::new();
    for p in passages {
        serde_json::to_writer(&mut lines, p).map_err(|e| RuntimeError::artifact(e.to_string()))?;
        lines.push(b'\n');
    }
    let k = k.clamp(1, n.max(1)) as i64;
    let manifest = serde_json::json!({
        "kind": "kb", "weights": "embeddings.safetensors",
        "description": format!("{n} passages embedded by {}@{}", spec.encoder, spec.encoder_version),
        "inputs": [{"name": "query", "datatype": "FP32", "shape": [-1, dim], "allow_nan": false}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, k]},
                    {"name": "index", "datatype": "INT64", "shape": [-1, k]}],
        "kb": spec,
    });
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| RuntimeError::artifact(e.to_string()))?;
    Ok((
        manifest,
        vec![
            ("embeddings.safetensors".to_string(), weights),
            (spec.passages.clone(), lines),
        ],
    ))
}

/// A passage found for a query, with its cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    /// The passage.
    pub passage: &'a Passage,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// Searches passages by a query vector.
pub trait Searcher {
    /// The `k` passages most similar to `query` (one vector of the encoder's width),
    /// best first (ties by position).
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit<'_>>>;
    /// Which encoder, and version, embedded the passages.
    fn encoder(&self) -> (&str, &str);
}

/// A loaded knowledge base.
#[derive(Debug)]
pub struct KnowledgeBase {
    spec: KbSpec,
    passages: Vec<Passage>,
    /// Row-major `[passages, dim]`.
    embeddings: Vec<f32>,
    dim: usize,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl KnowledgeBase {
    /// Builds the knowledge base from its embeddings, passages and signature.
    pub fn load(
        spec: KbSpec,
        weights: &[u8],
        passages: &[u8],
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
    ) -> Result<KnowledgeBase> {
        let tensors = candle_core::safetensors::load_buffer(weights, &candle_core::Device::Cpu)
            .map_err(|e| RuntimeError::artifact(e.to_string()))?;
        let matrix = tensors.get("embeddings").ok_or_else(|| {
            RuntimeError::artifact("the weights hold no tensor named 'embeddings'")
        })?;
        let (n, dim) = matrix
            .dims2()
            .map_err(|_| RuntimeError::artifact("'embeddings' is not [passages, dim]"))?;
        let embeddings = matrix
            .to_dtype(candle_core::DType::F32)
            .and_then(|m| m.flatten_all()?.to_vec1::<f32>())
            .map_err(|e| RuntimeError::artifact(e.to_string()))?;
        let text = std::str::from_utf8(passages)
            .map_err(|_| RuntimeError::artifact(format!("{} is not UTF-8", spec.passages)))?;
        let mut list = Vec::with_capacity(n);
        let mut ids = std::collections::HashSet::new();
        for (line, row) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let p: Passage = serde_json::from_str(row).map_err(|e| {
                RuntimeError::artifact(format!("{} line {}: {e}", spec.passages, line + 1))
            })?;
            if !ids.insert(p.id.clone()) {
                return Err(RuntimeError::artifact(format!(
                    "{} line {}: id '{}' twice",
                    spec.passages,
                    line + 1,
                    p.id
                )));
            }
            list.push(p);
        }
        if list.len() != n {
            return Err(RuntimeError::artifact(format!(
                "{} passages for {n} embeddings",
                list.len()
            )));
        }
        let [input] = inputs.as_slice() else {
            return Err(RuntimeError::Signature(
                "a kb takes one input, the query".into(),
            ));
        };
        if input.datatype != DType::F32 || input.shape != [-1, dim as i64] {
            return Err(RuntimeError::Signature(format!(
                "input '{}' must be FP32 [-1, {dim}]",
                input.name
            )));
        }
        for o in &outputs {
            let ok = match o.name.as_str() {
                "scores" => o.datatype == DType::F32,
                "index" => o.datatype == DType::I64,
                _ => false,
            };
            if !ok || o.shape.len() != 2 || o.shape[0] != -1 || o.shape[1] < 1 {
                return Err(RuntimeError::Signature(format!(
                    "output '{}': a kb gives 'scores' (FP32) and 'index' (INT64), [-1, k]",
                    o.name
                )));
            }
        }
        Ok(KnowledgeBase {
            spec,
            passages: list,
            embeddings,
            dim,
            inputs,
            outputs,
        })
    }

    /// The best `k` (index, score) for `query`.
    fn best(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = self
            .embeddings
            .chunks_exact(self.dim.max(1))
            .map(|row| dot(row, query))
            .enumerate()
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
        scored.sort_by(order);
        scored
    }
}

/// The dot product in eight lanes, which the compiler turns into vector instructions (a
/// single running sum must be added in order, one element at a time).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a
        .chunks_exact(8)
        .remainder()
        .iter()
        .zip(b.chunks_exact(8).remainder())
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

impl Searcher for KnowledgeBase {
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit<'_>>> {
        if query.len() != self.dim {
            return Err(RuntimeError::input(
                "query",
                format!("{} values for embeddings of {}", query.len(), self.dim),
            ));
        }
        Ok(self
            .best(query, k)
            .into_iter()
            .map(|(i, score)| Hit {
                passage: &self.passages[i],
                score,
            })
            .collect())
    }

    fn encoder(&self) -> (&str, &str) {
        (&self.spec.encoder, &self.spec.encoder_version)
    }
}

impl Model for KnowledgeBase {
    fn kind(&self) -> &'static str {
        "kb"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn searcher(&self) -> Option<&dyn Searcher> {
        Some(self)
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let [
            Tensor {
                data: TensorData::F32(queries),
                ..
            },
        ] = inputs
        else {
            return Err(RuntimeError::input(&self.inputs[0].name, "must be FP32"));
        };
        let rows = queries.len() / self.dim.max(1);
        wanted
            .iter()
            .map(|&w| {
                let spec = crate::tensor::output_spec(&self.outputs, w)?;
                let k = spec.shape[1] as usize;
                let best: Vec<Vec<(usize, f32)>> = queries
                    .chunks_exact(self.dim.max(1))
                    .map(|q| {
                        let mut b = self.best(q, k);
                        b.resize(k, (usize::MAX, f32::NAN));
                        b
                    })
                    .collect();
                let data = if spec.name == "index" {
                    TensorData::I64(
                        best.iter()
                            .flatten()
                            .map(|(i, _)| i64::try_from(*i).unwrap_or(-1))
                            .collect(),
                    )
                } else {
                    TensorData::F32(best.iter().flatten().map(|(_, s)| *s).collect())
                };
                Tensor::new(vec![rows, k], data)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_similar_passages_come_first() {
        let embeddings = candle_core::Tensor::from_vec(
            vec![1.0f32, 0.0, 0.0, 1.0, 0.6, 0.8],
            (3, 2),
            &candle_core::Device::Cpu,
        )
        .expect("tensor");
        // In memory, as `version_files` writes them: no shared temporary file.
        let bytes = safetensors::serialize([("embeddings", &embeddings)], None).expect("bytes");
        let passages = b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"y\"}\n{\"id\":\"c\",\"text\":\"z\"}\n";
        let spec = KbSpec {
            passages: "p.jsonl".into(),
            encoder: "intent".into(),
            encoder_version: "1".into(),
        };
        let io = |name: &str, dt: DType, shape: Vec<i64>| TensorSpec {
            name: name.into(),
            datatype: dt,
            shape,
            allow_nan: true,
        };
        let kb = KnowledgeBase::load(
            spec.clone(),
            &bytes,
            passages,
            vec![io("query", DType::F32, vec![-1, 2])],
            vec![io("scores", DType::F32, vec![-1, 2])],
        )
        .expect("loads");
        let hits = kb.search(&[0.0, 1.0], 2).expect("search");
        let ids: Vec<&str> = hits.iter().map(|h| h.passage.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert!((hits[1].score - 0.8).abs() < 1e-6);
        assert!(kb.search(&[1.0], 1).is_err(), "a query of the wrong width");
        let twice = b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"y\"}\n{\"id\":\"c\",\"text\":\"z\"}\n";
        let err = KnowledgeBase::load(
            spec,
            &bytes,
            twice,
            vec![io("query", DType::F32, vec![-1, 2])],
            vec![],
        )
        .expect_err("an id twice");
        assert!(err.to_string().contains("id 'a' twice"), "{err}");
    }
}
