//! Metric buckets and the label values shared by several series: a leaf that every
//! metric definition imports and that imports nothing of the crate.

/// Latency buckets from 50µs to 10s: tree inference takes tens of microseconds, a large
/// batch or a cold path can take seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Batch sizes: powers of two up to the largest default batch.
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Model load buckets, from 1ms to 2 minutes.
pub const LOAD_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0,
];

/// Buckets for predicted values: probabilities in tenths, then forecast-sized numbers.
pub const PREDICTION_BUCKETS: &[f64] = &[
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    1000.0,
];

/// Buckets for |live − shadow|: from rounding noise to a different answer.
pub const DIFFERENCE_BUCKETS: &[f64] = &[
    1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 10.0, 100.0,
];

/// Label used for a model or version the server does not know.
pub const UNKNOWN: &str = "_unknown";

/// The `method` label of V2 inference.
pub const MODEL_INFER: &str = "ModelInfer";

/// The `method` label of V2 inference on a stream (each message counted).
pub const MODEL_STREAM_INFER: &str = "ModelStreamInfer";
