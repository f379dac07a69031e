//! The inputs a V2 client is told about (model metadata and Triton's model
//! configuration), which are not quite the model's own specs:
//!
//! - A one-row-one-element input (`[-1]`: a text, a date, a SKU id) is advertised as
//!   `[-1, 1]`, Triton's shape for a batched BYTES input (`max_batch_size > 0`,
//!   `dims: [1]`). Clients that read the per-row shape from metadata (perf_analyzer,
//!   generated `tritonclient` code) cannot build a rank-0 row; requests in either shape
//!   are accepted ([`row_shape`]).
//! - A feature-backed model also takes the entity keys of its bound inputs (e.g.
//!   `customer_id`) in place of the features: each key is advertised as an optional
//!   BYTES input with a `replaces` parameter naming the bound inputs, and each bound
//!   input as optional with an `entity_keys` parameter, so a metadata-driven tool can
//!   discover scoring by id.

use mercator_runtime::{DType, TensorSpec};

use crate::models::LoadedModel;
use crate::serving::lookup;

/// Parameter of an entity key input: the bound inputs it replaces (comma-separated).
pub const REPLACES: &str = "replaces";
/// Parameter of a bound input: the entity keys that may be sent instead (comma-separated).
pub const ENTITY_KEYS: &str = "entity_keys";

/// One input as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvertisedInput {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub datatype: DType,
    /// Shape with the batch dimension (`-1`) first.
    pub shape: Vec<i64>,
    /// Whether a request may leave it out.
    pub optional: bool,
    /// Mercator's extension parameters ([`REPLACES`], [`ENTITY_KEYS`]).
    pub parameters: Vec<(&'static str, String)>,
}

/// The shape a client sees for a model input spec: `[-1]` becomes `[-1, 1]`.
pub fn advertised_shape(spec: &TensorSpec) -> Vec<i64> {
    match spec.shape.as_slice() {
        [batch] => vec![*batch, 1],
        shape => shape.to_vec(),
    }
}

/// The shape a request's tensor is read in: `[n, 1]` sent for a `[-1]` input (as its
/// advertised shape says) is read as `[n]`; anything else as sent.
pub fn row_shape(spec: &TensorSpec, dims: Vec<usize>) -> Vec<usize> {
    match (spec.shape.as_slice(), dims.as_slice()) {
        ([_], [n, 1]) => vec![*n],
        _ => dims,
    }
}

/// The inputs of `model` as V2 clients are told about them. Entity keys are listed
/// only while the feature store defines the views the bound inputs read (a model whose
/// views are gone cannot be scored by id, so it is not advertised).
pub fn inputs(
    model: &LoadedModel,
    store: &mercator_features::FeatureStore,
) -> Vec<AdvertisedInput> {
    let specs = model.model.inputs();
    let mut out: Vec<AdvertisedInput> = specs
        .iter()
        .map(|s| AdvertisedInput {
            name: s.name.clone(),
            datatype: s.datatype,
            shape: advertised_shape(s),
            optional: false,
            parameters: Vec::new(),
        })
        .collect();
    // Each entity key with the bound inputs it replaces, in the manifest's order.
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for input in model
        .manifest
        .inputs
        .iter()
        .filter(|i| !i.features.is_empty())
    {
        let Ok(join_keys) = lookup::join_keys(store, input) else {
            continue;
        };
        if let Some(advertised) = out.iter_mut().find(|a| a.name == input.name) {
            advertised.optional = true;
            advertised
                .parameters
                .push((ENTITY_KEYS, join_keys.join(",")));
        }
        for key in join_keys {
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, bound)) => bound.push(input.name.clone()),
                None => keys.push((key, vec![input.name.clone()])),
            }
        }
    }
    for (key, bound) in keys {
        // A key named like one of the model's own inputs is that input.
        if specs.iter().any(|s| s.name == key) {
            continue;
        }
        out.push(AdvertisedInput {
            name: key,
            datatype: DType::Bytes,
            shape: vec![-1, 1],
            optional: true,
            parameters: vec![(REPLACES, bound.join(","))],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: Vec<i64>) -> TensorSpec {
        TensorSpec {
            name: "text".into(),
            datatype: DType::Bytes,
            shape,
            allow_nan: true,
        }
    }

    #[test]
    fn a_one_element_row_is_advertised_and_read_as_triton_does() {
        assert_eq!(advertised_shape(&spec(vec![-1])), vec![-1, 1]);
        assert_eq!(advertised_shape(&spec(vec![-1, 12])), vec![-1, 12]);
        assert_eq!(row_shape(&spec(vec![-1]), vec![4, 1]), vec![4]);
        assert_eq!(row_shape(&spec(vec![-1]), vec![4]), vec![4]);
        // Only a trailing 1 is dropped, and only for a one-element row.
        assert_eq!(row_shape(&spec(vec![-1]), vec![4, 2]), vec![4, 2]);
        assert_eq!(row_shape(&spec(vec![-1, 1]), vec![4, 1]), vec![4, 1]);
    }
}
