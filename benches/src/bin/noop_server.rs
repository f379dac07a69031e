//! The gRPC floor as its own process, for a light client (h2load) to measure against
//! Mercator in the same run (`benches/light_client.py`): a tonic server whose V2
//! `ModelInfer` answers at once with an empty response, on `--addr`, with `TCP_NODELAY`
//! as Mercator sets it, until killed.
//!
//!     cargo run --release -p mercator-benches --bin noop_server -- --addr 127.0.0.1:18201

use clap::Parser;
use mercator_benches::noop::NoopV2;
use mercator_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:18201")]
    addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    println!("noop V2 server on {}", args.addr);
    tonic::transport::Server::builder()
        .add_service(GrpcInferenceServiceServer::new(NoopV2))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
