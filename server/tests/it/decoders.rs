//! Every request decoder fed random shapes and lengths under a small allocation cap: the
//! claim in a shape (2^40 rows, i64::MAX) must never become an allocation. The property
//! runs in a child process of this test binary whose address space is capped at 2 GiB
//! (`ulimit -v`), so an allocation sized from a claim aborts it — the failure the issue
//! found (an abort, not a panic) — and the parent sees the child die.

use std::process::Command;

use mercator_proto::inference::InferTensorContents;
use mercator_runtime::DType;

/// Set in the child: run the property itself.
const CHILD: &str = "MERCATOR_DECODERS_CHILD";
/// The child's address space, in KiB.
const CAP_KIB: u64 = 2 * 1024 * 1024;

const DTYPES: [&str; 14] = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "BF16", "FP32", "FP64", "BYTES",
];

/// A dimension: small, large, or a claim no body could back.
fn dim(rng: &mut fastrand::Rng) -> i64 {
    const CLAIMS: [i64; 8] = [0, 1, 2, 3, 1 << 20, 1 << 31, 1 << 40, i64::MAX];
    CLAIMS[rng.usize(..CLAIMS.len())]
}

fn element(rng: &mut fastrand::Rng) -> serde_json::Value {
    match rng.u8(..5) {
        0 => serde_json::json!(rng.bool()),
        1 => serde_json::json!(rng.i64(-300..300)),
        2 => serde_json::json!(rng.f64()),
        3 => serde_json::json!("x".repeat(rng.usize(..8))),
        _ => serde_json::json!([rng.u8(..)]),
    }
}

/// One random case through every decoder; errors are fine, an abort is not.
fn one_case(rng: &mut fastrand::Rng) {
    let dtype = DTYPES[rng.usize(..DTYPES.len())];
    let shape: Vec<i64> = (0..rng.usize(1..=4)).map(|_| dim(rng)).collect();
    let data: Vec<serde_json::Value> = (0..rng.usize(..64)).map(|_| element(rng)).collect();
    // JSON tensors.
    let json = serde_json::json!({"inputs": [{"name": "x", "datatype": dtype,
        "shape": shape, "data": data}]})
    .to_string();
    let body = bytes::Bytes::from(json);
    let headers = axum::http::HeaderMap::new();
    let _ = mercator_server::rest::infer::parse("m", "", &headers, &body);
    // Binary data claiming any size of a body of a few bytes.
    let blob: Vec<u8> = (0..rng.usize(..256)).map(|_| rng.u8(..)).collect();
    let size = [0u64, 4, blob.len() as u64, 1 << 40, u64::MAX][rng.usize(..5)];
    let header = serde_json::json!({"inputs": [{"name": "x", "datatype": dtype,
        "shape": shape, "parameters": {"binary_data_size": size}}]})
    .to_string();
    let mut with_blob = header.clone().into_bytes();
    with_blob.extend_from_slice(&blob);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        mercator_server::rest::infer::HEADER_LENGTH,
        axum::http::HeaderValue::from(header.len()),
    );
    let _ = mercator_server::rest::infer::parse("m", "", &headers, &bytes::Bytes::from(with_blob));
    // gRPC's raw and typed contents, with the count the shape claims.
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
    if let (Some(count), Some(dt)) = (count, DType::parse(dtype)) {
        let _ = mercator_server::v2::tensors::decode_raw(dt, &blob, count);
        let _ = mercator_server::v2::tensors::decode_bytes_elements(&blob, count);
        let typed = InferTensorContents {
            fp32_contents: blob.iter().map(|&b| f32::from(b)).collect(),
            bytes_contents: vec![blob.clone()],
            ..Default::default()
        };
        let _ = mercator_server::v2::tensors::decode_contents(dt, typed, count);
    }
}

#[test]
fn no_decoder_allocates_from_a_claimed_shape() {
    if std::env::var_os(CHILD).is_some() {
        let seed = std::env::var(CHILD)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..3000 {
            one_case(&mut rng);
        }
        return;
    }
    let seed = fastrand::u64(..);
    let exe = std::env::current_exe().expect("this test binary");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CAP_KIB} && exec \"$0\" --exact decoders::no_decoder_allocates_from_a_claimed_shape --test-threads 1 --nocapture"
        ))
        .arg(exe)
        .env(CHILD, seed.to_string())
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "a decoder aborted under a {CAP_KIB} KiB address space (seed {seed}): {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 passed"),
        "the child ran the property: {text}"
    );
}
