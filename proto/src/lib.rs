//! Mercator's wire types: the KServe V2 / Open Inference Protocol (`inference`) and
//! Mercator's own services (`mercator.v1`), generated at build time from `proto/`.
//!
//! This crate owns only the generated code and the descriptor set used for reflection;
//! conversions to domain types live at the edge of the crate that owns the domain.

/// KServe V2 / Open Inference Protocol, wire-compatible with Triton's `inference` package.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod inference {
    tonic::include_proto!("inference");
}

/// Mercator's own typed services.
pub mod mercator {
    /// Version 1 of the Mercator API.
    #[allow(clippy::all, missing_docs, unreachable_pub)]
    pub mod v1 {
        tonic::include_proto!("mercator.v1");
    }
}

pub use mercator::v1;

/// Encoded `FileDescriptorSet` of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mercator_descriptor");
