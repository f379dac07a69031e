//! The fuzz targets' bodies, one function per target: each takes any bytes and must
//! refuse bad input with an error, never panic. The libFuzzer binaries under
//! `fuzz_targets/` call them (coverage-guided, `scripts/fuzz.sh`), and the server's test
//! binary includes this file (`server/tests/it/fuzz_corpus.rs`) to run every committed
//! corpus input and seeded mutations of them on each test run, so CI fuzzes without the
//! instrumented build.
//!
//! Paths to the demo models are relative to the including crate's manifest folder, which
//! is one level below the repository root for both `fuzz/` and `server/`.

use std::sync::OnceLock;
use std::time::Duration;

use mercator_features::FieldType;
use mercator_proto::inference as pb;
use mercator_runtime::Manifest;
use mercator_server::auth::jwt::{JwtSettings, JwtVerifier};
use mercator_server::models::table::{LoadedModel, Stats};
use mercator_server::monitor::{Metrics, VersionMetrics};
use mercator_server::v2::request::{decode_request, first_bytes_element, take_entity_keys};
use mercator_server::v2::tensors::encode_raw;

/// A fuzz target: any bytes in, a panic only for a bug.
pub type Target = fn(&[u8]);

/// The targets by name, as `scripts/fuzz.sh` and the corpus folders call them.
pub const TARGETS: [(&str, Target); 8] = [
    ("manifest", manifest),
    ("artifacts", artifacts),
    ("definitions", definitions),
    ("csv_cell", csv_cell),
    ("jwt", jwt),
    ("v2_request", v2_request),
    ("rest_json", rest_json),
    ("rest_binary", rest_binary),
];

/// A manifest (`mercator.json`) from anyone who may register a version: parsing it and
/// its typed sections.
pub fn manifest(data: &[u8]) {
    if let Ok((manifest, _sections)) = Manifest::parse_with_sections(data) {
        let _ = manifest.quantiles();
        let _ = manifest.non_negative();
    }
}

const ARTIFACT_MANIFESTS: [&[u8]; 3] = [
    include_bytes!("../../examples/churn/mercator.json"),
    include_bytes!("../../examples/demand/ets/mercator.json"),
    include_bytes!("../../examples/demand/net/mercator.json"),
];

/// Model artifacts behind real manifests: XGBoost JSON, a per-series ETS bundle, and a
/// neural forecaster's safetensors. The first byte picks the manifest, the rest is the
/// weights file.
pub fn artifacts(data: &[u8]) {
    let Some((&pick, weights)) = data.split_first() else {
        return;
    };
    let text = ARTIFACT_MANIFESTS[usize::from(pick) % ARTIFACT_MANIFESTS.len()];
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let _ = manifest.build(weights);
}

/// Feature definitions (TOML) as `ApplyDefinitions` receives them.
pub fn definitions(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mercator_features::definitions::Definitions::from_toml(text);
    }
}

const FIELD_TYPES: [FieldType; 7] = [
    FieldType::Float32,
    FieldType::Float64,
    FieldType::Int64,
    FieldType::String,
    FieldType::Bool,
    FieldType::Float32List,
    FieldType::Date,
];

/// One CSV cell read as each field type, as `LoadFile` and `features load` read them;
/// the first byte picks the type. What parses must pass its own type's write check.
pub fn csv_cell(data: &[u8]) {
    let Some((&pick, cell)) = data.split_first() else {
        return;
    };
    let Ok(cell) = std::str::from_utf8(cell) else {
        return;
    };
    let t = FIELD_TYPES[usize::from(pick) % FIELD_TYPES.len()];
    if let Ok(value) = mercator_features::ingest::parse_value(t, cell) {
        assert_eq!(
            t.refuses(&value),
            None,
            "{t:?} parsed a value it then refuses"
        );
    }
}

const JWKS: &str = include_str!("../jwks.json");

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("mercator-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&path, JWKS).expect("write the JWKS");
        JwtVerifier::start(JwtSettings {
            jwks_file: path,
            issuer: "https://idp.example.test/".into(),
            audience: "mercator".into(),
            scopes_claim: "realm_access.roles".into(),
            leeway: Duration::from_secs(30),
            reload: Duration::ZERO,
        })
        .expect("the JWKS loads")
    })
}

/// Bearer tokens as the auth layer receives them, against a JWKS with an RSA and an EC
/// key: anything that is not a valid token is refused.
pub fn jwt(data: &[u8]) {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = verifier().verify(token);
    }
}

/// The demo models a V2 request is decoded against: churn (XGBoost, a feature-backed
/// FP32 input keyed by `customer_id`), intent (text as BYTES), and the neural demand
/// forecaster (a NaN-padded history).
fn v2_models() -> &'static [LoadedModel] {
    static MODELS: OnceLock<Vec<LoadedModel>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let metrics =
            Metrics::register(&prometheus::Registry::new()).expect("register the metrics");
        ["churn", "intent", "demand/net"]
            .iter()
            .map(|dir| {
                let read = |f: &str| {
                    std::fs::read(format!("{root}/{dir}/{f}"))
                        .unwrap_or_else(|e| panic!("read {dir}/{f}: {e}"))
                };
                let manifest = Manifest::parse(&read("mercator.json")).expect("a demo manifest");
                let model = manifest
                    .build(&read(&manifest.weights))
                    .expect("a demo model");
                let sections = manifest.sections().expect("its sections");
                LoadedModel {
                    name: (*dir).into(),
                    version: 1,
                    version_label: "1".into(),
                    metrics: VersionMetrics::new(&metrics, dir, "1"),
                    logged_features: LoadedModel::logged_features_of(&manifest),
                    manifest,
                    model: model.into(),
                    max_batch_size: 64,
                    stats: Stats::new(64),
                    sections,
                    drift: None,
                    batcher: None,
                }
            })
            .collect()
    })
}

/// A V2 `ModelInferRequest` as the server decodes it: the first byte picks the model, the
/// rest is the protobuf. Routing's peek at the entity key, taking the entity keys out,
/// decoding and checking every tensor against the model's signature, then (for what
/// decodes) inference and encoding the outputs.
pub fn v2_request(data: &[u8]) {
    let _ = v2_request_infers(data);
}

/// [`v2_request`], saying whether the request got as far as an answer (entity keys
/// count: the server would read their features), so a test can tell that the seeds
/// reach the model rather than being refused at the door.
pub fn v2_request_infers(data: &[u8]) -> bool {
    use prost::Message;
    let Some((&pick, bytes)) = data.split_first() else {
        return false;
    };
    let Ok(req) = pb::ModelInferRequest::decode(bytes) else {
        return false;
    };
    let models = v2_models();
    let model = &models[usize::from(pick) % models.len()];
    let pb::ModelInferRequest {
        mut inputs,
        raw_input_contents: mut raw,
        outputs,
        ..
    } = req;
    let _ = first_bytes_element(&inputs, &raw, "customer_id");
    match take_entity_keys(&mut inputs, &mut raw, &["customer_id".into()]) {
        Ok(Some(keys)) => {
            assert!(keys.iter().all(|k| k.len() == 1), "one part per join key");
            return !keys.is_empty();
        }
        Ok(None) => {}
        Err(_) => return false,
    }
    let Ok(decoded) = decode_request(inputs, raw, &outputs, model, Vec::new()) else {
        return false;
    };
    assert!(
        decoded.rows <= model.max_batch_size,
        "a batch over the cap decoded"
    );
    let Ok(outs) = model.model.infer(&decoded.inputs, &decoded.wanted) else {
        return false;
    };
    for out in &outs {
        let _ = encode_raw(&out.data);
    }
    true
}

/// A REST inference body of JSON tensors, as `POST /v2/models/{name}/infer` parses it
/// before any call: the request, its inputs read into typed data straight from the text
/// (whatever shape they claim), parameters and requested outputs. What parses is a valid
/// V2 request: one raw content per input, each the size its shape and datatype need.
pub fn rest_json(data: &[u8]) {
    let body = bytes::Bytes::copy_from_slice(data);
    let headers = axum::http::HeaderMap::new();
    if let Ok((request, _)) = mercator_server::rest::infer::parse("churn", "", &headers, &body) {
        assert_eq!(request.inputs.len(), request.raw_input_contents.len());
    }
}

/// A REST body with Triton's binary data: the first two bytes give the JSON header's
/// length (`Inference-Header-Content-Length`, little-endian, past the body's end too),
/// the rest is the body — a JSON header whose inputs claim `binary_data_size` bytes of
/// what follows.
pub fn rest_binary(data: &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let body = bytes::Bytes::copy_from_slice(rest);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        mercator_server::rest::infer::HEADER_LENGTH,
        axum::http::HeaderValue::from(u16::from_le_bytes(*length)),
    );
    if let Ok((request, _)) = mercator_server::rest::infer::parse("churn", "", &headers, &body) {
        assert_eq!(request.inputs.len(), request.raw_input_contents.len());
    }
}
