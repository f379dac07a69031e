//! Compiles the `.proto` files with protox (pure Rust, so no system `protoc` is needed)
//! and generates the prost messages and tonic services into OUT_DIR, plus a descriptor
//! set for gRPC server reflection.

use std::path::{Path, PathBuf};

use prost::Message;

/// Every `.proto` file under `proto/`, so that a new service is one new file.
fn protos(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            protos(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            found.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    protos(Path::new("proto"), &mut files)?;
    files.sort();
    for proto in &files {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    let fds = protox::compile(&files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("mercator_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
