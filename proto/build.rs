//! Compiles the `.proto` files with protox (pure Rust, so no system `protoc` is needed)
//! and generates the prost messages and tonic services into OUT_DIR, plus a descriptor
//! set for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/inference/grpc_service.proto",
    "proto/inference/model_config.proto",
    "proto/mercator/v1/registry.proto",
    "proto/mercator/v1/feature_store.proto",
    "proto/mercator/v1/churn.proto",
    "proto/mercator/v1/intent.proto",
    "proto/mercator/v1/forecasting.proto",
    "proto/mercator/v1/monitoring.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("mercator_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
