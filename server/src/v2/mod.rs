//! The KServe V2 / Open Inference Protocol inference path: decode a `ModelInferRequest`
//! at this edge, run it on the serving core in domain types, encode the response.
//!
//! Inputs arrive either all as `raw_input_contents` (row-major little-endian bytes, one
//! entry per input; BYTES elements each prefixed by a 4-byte little-endian length) or all
//! as typed `contents`; a request that mixes the two is refused. Outputs go back as
//! `raw_output_contents`, which is what Triton returns and the only thing `tritonclient`
//! reads. Every length is checked before anything is allocated from it.
//!
//! - [`tensors`]: tensor contents, both encodings;
//! - [`request`]: a request's tensors checked against the answering version;
//! - [`infer`]: the path itself (entity keys to features, routing, shadows, statistics);
//! - [`signature`]: the inputs clients are told about (Triton's shapes, entity keys).

pub mod infer;
pub mod request;
pub mod signature;
pub mod tensors;

pub use infer::{ENTITIES_WITHOUT_FEATURES, ENTITY_KEY, infer};
