//! Feed-forward nets on candle-core: the weights are a `safetensors` file, the layers are
//! listed in the manifest, in order:
//!
//! ```json
//! "layers": [
//!   {"type": "embedding_bag", "weight": "emb.weight", "mode": "mean", "padding_idx": 0},
//!   {"type": "linear", "weight": "fc1.weight", "bias": "fc1.bias"},
//!   {"type": "layer_norm", "weight": "ln.weight", "bias": "ln.bias", "eps": 1e-5},
//!   {"type": "gelu"}, {"type": "dropout"},
//!   {"type": "linear", "weight": "fc2.weight", "bias": "fc2.bias"},
//!   {"type": "softmax"}
//! ]
//! ```
//!
//! Tensor names and layouts are PyTorch's (`nn.Linear.weight` is `[out, in]`), so a
//! `state_dict` saved with `safetensors` loads as it is. Every shape is checked when the
//! model loads, so a request can only fail on its own input. The math follows PyTorch:
//! GELU is the exact (erf) form unless `"approximate": "tanh"`, layer norm uses the biased
//! variance, dropout does nothing at inference, and an embedding bag averages (or sums)
//! the rows of the ids in each row of an integer input, skipping `padding_idx` and
//! negative ids; a bag with no ids is zeros.

use candle_core::{D, Device, Tensor as CTensor};
use serde::Deserialize;

use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// One layer as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// `x W^T + b`.
    Linear {
        /// Name of the `[out, in]` weight.
        weight: String,
        /// Name of the `[out]` bias, if any.
        #[serde(default)]
        bias: Option<String>,
    },
    /// `max(x, 0)`.
    Relu,
    /// Gaussian error linear unit.
    Gelu {
        /// `none` (exact, PyTorch's default) or `tanh`.
        #[serde(default)]
        approximate: GeluApproximation,
    },
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softmax over the features.
    Softmax,
    /// Layer normalisation over the features.
    LayerNorm {
        /// Name of the `[features]` scale, if any.
        #[serde(default)]
        weight: Option<String>,
        /// Name of the `[features]` shift, if any.
        #[serde(default)]
        bias: Option<String>,
        /// Added to the variance.
        #[serde(default = "default_eps")]
        eps: f64,
    },
    /// Nothing at inference.
    Dropout {
        /// The training-time rate (ignored).
        #[serde(default)]
        p: f64,
    },
    /// Mean or sum of embedding rows for the ids in each input row; first layer only.
    EmbeddingBag {
        /// Name of the `[vocabulary, dim]` table.
        weight: String,
        /// `mean` (default) or `sum`.
        #[serde(default)]
        mode: BagMode,
        /// An id that pads rows and is skipped.
        #[serde(default)]
        padding_idx: Option<i64>,
    },
}

fn default_eps() -> f64 {
    1e-5
}

/// How GELU is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeluApproximation {
    /// `x Φ(x)` with the exact normal CDF.
    #[default]
    None,
    /// The tanh approximation.
    Tanh,
}

/// How an embedding bag combines rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BagMode {
    /// Average of the rows.
    #[default]
    Mean,
    /// Sum of the rows.
    Sum,
}

#[derive(Debug)]
enum Layer {
    Linear {
        /// `[in, out]`, transposed once at load.
        weight_t: CTensor,
        bias: Option<CTensor>,
    },
    Relu,
    Gelu(GeluApproximation),
    Tanh,
    Sigmoid,
    Softmax,
    /// Layer normalisation.
    Norm {
        weight: Option<CTensor>,
        bias: Option<CTensor>,
        eps: f64,
    },
}

/// The first layer's lookup table, kept as plain rows: bags are gathered in Rust.
#[derive(Debug)]
struct Bag {
    table: Vec<f32>,
    vocabulary: usize,
    dim: usize,
    mode: BagMode,
    padding_idx: Option<i64>,
}

/// A loaded net.
#[derive(Debug)]
pub struct CandleModel {
    bag: Option<Bag>,
    layers: Vec<Layer>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    /// Columns each input contributes (ids per row for the bag's input).
    input_widths: Vec<usize>,
    width_in: usize,
    width_out: usize,
}

fn artifact(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidArtifact(format!("candle: {e}"))
}

fn compute(e: candle_core::Error) -> RuntimeError {
    RuntimeError::Signature(format!("candle: {e}"))
}

/// Columns of a `[-1, k]` spec (1 for `[-1]`).
fn width_of(spec: &TensorSpec) -> Result<usize> {
    match spec.shape.as_slice() {
        [_] => Ok(1),
        [_, k] if *k > 0 => Ok(*k as usize),
        _ => Err(RuntimeError::Signature(format!(
            "'{}' must have shape [-1] or [-1, k] with a fixed k, not {:?}",
            spec.name, spec.shape
        ))),
    }
}

impl CandleModel {
    /// Loads a net: `layers` as the manifest lists them, `weights` a safetensors file.
    pub fn load(
        weights: &[u8],
        layers: &[LayerSpec],
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
    ) -> Result<CandleModel> {
        let mut tensors =
            candle_core::safetensors::load_buffer(weights, &Device::Cpu).map_err(artifact)?;
        let mut take = |name: &str, layer: usize| -> Result<CTensor> {
            tensors
                .remove(name)
                .ok_or_else(|| {
                    artifact(format!(
                        "layers[{layer}] names '{name}', which the weights file does not hold"
                    ))
                })?
                .to_dtype(candle_core::DType::F32)
                .map_err(artifact)
        };
        let input_widths = inputs.iter().map(width_of).collect::<Result<Vec<_>>>()?;
        let [output] = outputs.as_slice() else {
            return Err(RuntimeError::Signature(
                "a candle net has exactly one output".into(),
            ));
        };
        if !matches!(output.datatype, DType::F32 | DType::F64) {
            return Err(RuntimeError::Signature(format!(
                "output '{}' must be FP32 or FP64",
                output.name
            )));
        }
        let mut bag = None;
        let mut width;
        let mut rest = layers;
        if let Some((
            LayerSpec::EmbeddingBag {
                weight,
                mode,
                padding_idx,
            },
            tail,
        )) = layers.split_first()
        {
            let [input] = inputs.as_slice() else {
                return Err(RuntimeError::Signature(
                    "a net that starts with an embedding bag takes exactly one input (the ids)"
                        .into(),
                ));
            };
            if !matches!(
                input.datatype,
                DType::I64
                    | DType::I32
                    | DType::U32
                    | DType::U16
                    | DType::I16
                    | DType::U8
                    | DType::I8
            ) {
                return Err(RuntimeError::Signature(format!(
                    "input '{}' holds ids for an embedding bag: it must be an integer type",
                    input.name
                )));
            }
            let table = take(weight, 0)?;
            let (vocabulary, dim) = table
                .dims2()
                .map_err(|_| artifact(format!("layers[0] '{weight}' must be [vocabulary, dim]")))?;
            bag = Some(Bag {
                table: table
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(artifact)?,
                vocabulary,
                dim,
                mode: *mode,
                padding_idx: *padding_idx,
            });
            width = dim;
            rest = tail;
        } else {
            for spec in &inputs {
                if !spec.datatype.is_numeric() {
                    return Err(RuntimeError::Signature(format!(
                        "input '{}' must be numeric",
                        spec.name
                    )));
                }
            }
            width = input_widths.iter().sum();
        }
        let width_in = width;
        let offset = layers.len() - rest.len();
        let mut built = Vec::with_capacity(rest.len());
        for (i, spec) in rest.iter().enumerate() {
            let at = i + offset;
            let expect = |t: &CTensor, dims: &[usize], name: &str| -> Result<()> {
                if t.dims() == dims {
                    Ok(())
                } else {
                    Err(artifact(format!(
                        "layers[{at}] '{name}' has shape {:?}, the net needs {dims:?} here",
                        t.dims()
                    )))
                }
            };
            built.push(match spec {
                LayerSpec::Linear { weight, bias } => {
                    let w = take(weight, at)?;
                    let (out, inn) = w.dims2().map_err(|_| {
                        artifact(format!("layers[{at}] '{weight}' must be [out, in]"))
                    })?;
                    expect(&w, &[out, width], weight)?;
                    let _ = inn;
                    let bias = match bias {
                        Some(b) => {
                            let b = take(b, at)?;
                            expect(&b, &[out], bias.as_deref().unwrap_or_default())?;
                            Some(b)
                        }
                        None => None,
                    };
                    width = out;
                    Layer::Linear {
                        weight_t: w.t().and_then(|t| t.contiguous()).map_err(artifact)?,
                        bias,
                    }
                }
                LayerSpec::LayerNorm { weight, bias, eps } => {
                    let mut param = |name: &Option<String>| -> Result<Option<CTensor>> {
                        name.as_deref()
                            .map(|n| {
                                let t = take(n, at)?;
                                expect(&t, &[width], n)?;
                                Ok(t)
                            })
                            .transpose()
                    };
                    Layer::Norm {
                        weight: param(weight)?,
                        bias: param(bias)?,
                        eps: *eps,
                    }
                }
                LayerSpec::Relu => Layer::Relu,
                LayerSpec::Gelu { approximate } => Layer::Gelu(*approximate),
                LayerSpec::Tanh => Layer::Tanh,
                LayerSpec::Sigmoid => Layer::Sigmoid,
                LayerSpec::Softmax => Layer::Softmax,
                LayerSpec::Dropout { .. } => continue,
                LayerSpec::EmbeddingBag { .. } => {
                    return Err(RuntimeError::Signature(format!(
                        "layers[{at}]: an embedding bag can only be the first layer"
                    )));
                }
            });
        }
        let out_width = width_of(output)?;
        if out_width != width {
            return Err(RuntimeError::Signature(format!(
                "output '{}' is {:?}, the net ends with {width} features",
                output.name, output.shape
            )));
        }
        Ok(CandleModel {
            bag,
            layers: built,
            inputs,
            outputs,
            input_widths,
            width_in,
            width_out: out_width,
        })
    }

    /// The first layer's input as a `[rows, width_in]` f32 matrix.
    fn first_input(&self, inputs: &[Tensor], rows: usize) -> Result<Vec<f32>> {
        let Some(bag) = &self.bag else {
            return crate::concat_f32(inputs, &self.inputs, &self.input_widths, rows);
        };
        let mut x = vec![0.0f32; rows * self.width_in];
        let spec = &self.inputs[0];
        let per_row = self.input_widths[0];
        let ids = integer_ids(&inputs[0].data)
            .ok_or_else(|| RuntimeError::input(&spec.name, "must hold integer ids"))?;
        for (r, row_ids) in ids.chunks(per_row.max(1)).enumerate().take(rows) {
            let out = &mut x[r * bag.dim..(r + 1) * bag.dim];
            let mut n = 0usize;
            for &id in row_ids {
                if id < 0 || Some(id) == bag.padding_idx {
                    continue;
                }
                let i = usize::try_from(id)
                    .ok()
                    .filter(|&i| i < bag.vocabulary)
                    .ok_or_else(|| {
                        RuntimeError::input(
                            &spec.name,
                            format!("id {id} is outside the vocabulary of {}", bag.vocabulary),
                        )
                    })?;
                for (o, w) in out
                    .iter_mut()
                    .zip(&bag.table[i * bag.dim..(i + 1) * bag.dim])
                {
                    *o += w;
                }
                n += 1;
            }
            if bag.mode == BagMode::Mean && n > 0 {
                let inv = 1.0 / n as f32;
                out.iter_mut().for_each(|o| *o *= inv);
            }
        }
        Ok(x)
    }

    fn forward(&self, mut x: CTensor) -> candle_core::Result<CTensor> {
        for layer in &self.layers {
            x = match layer {
                Layer::Linear { weight_t, bias } => {
                    let y = x.matmul(weight_t)?;
                    match bias {
                        Some(b) => y.broadcast_add(b)?,
                        None => y,
                    }
                }
                Layer::Relu => x.relu()?,
                Layer::Gelu(GeluApproximation::None) => x.gelu_erf()?,
                Layer::Gelu(GeluApproximation::Tanh) => x.gelu()?,
                Layer::Tanh => x.tanh()?,
                Layer::Sigmoid => x.neg()?.exp()?.affine(1.0, 1.0)?.recip()?,
                Layer::Softmax => {
                    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
                    shifted.broadcast_div(&shifted.sum_keepdim(D::Minus1)?)?
                }
                Layer::Norm { weight, bias, eps } => {
                    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                    let mut y = centred.broadcast_div(&var.affine(1.0, *eps)?.sqrt()?)?;
                    if let Some(w) = weight {
                        y = y.broadcast_mul(w)?;
                    }
                    if let Some(b) = bias {
                        y = y.broadcast_add(b)?;
                    }
                    y
                }
            };
        }
        Ok(x)
    }
}

/// Integer elements as i64 (ids); `None` for other types.
fn integer_ids(data: &TensorData) -> Option<Vec<i64>> {
    Some(match data {
        TensorData::I64(v) => v.clone(),
        TensorData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        TensorData::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
        TensorData::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        TensorData::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        TensorData::U16(v) => v.iter().map(|&x| i64::from(x)).collect(),
        TensorData::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        _ => return None,
    })
}

impl Model for CandleModel {
    fn kind(&self) -> &'static str {
        "candle"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let rows = crate::batch_rows(inputs, &self.inputs, &self.input_widths)?;
        let x = self.first_input(inputs, rows)?;
        let y = if rows == 0 {
            Vec::new()
        } else {
            let x = CTensor::from_vec(x, (rows, self.width_in), &Device::Cpu).map_err(compute)?;
            self.forward(x)
                .and_then(|y| y.flatten_all())
                .and_then(|y| y.to_vec1::<f32>())
                .map_err(compute)?
        };
        wanted
            .iter()
            .map(|&k| {
                let spec = crate::tensor::output_spec(&self.outputs, k)?;
                let shape = if spec.shape.len() == 1 {
                    vec![rows]
                } else {
                    vec![rows, self.width_out]
                };
                let data = TensorData::from_f32(y.clone(), spec.datatype).ok_or_else(|| {
                    RuntimeError::Signature(format!("output '{}' datatype", spec.name))
                })?;
                Tensor::new(shape, data)
            })
            .collect()
    }
}

/// The layers of a manifest's `layers` entry.
pub fn layers_from_manifest(
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Vec<LayerSpec>> {
    let value = extra
        .get("layers")
        .ok_or_else(|| RuntimeError::Signature("a candle manifest lists its 'layers'".into()))?;
    serde_json::from_value(value.clone())
        .map_err(|e| RuntimeError::Signature(format!("layers: {e}")))
}
