//! `mercator infer MODEL --input request.json`: any model, called with a V2 inference
//! request written as the REST protocol's JSON (`{"inputs": [{"name", "shape",
//! "datatype", "data"}], ...}`, the body curl would POST), sent over gRPC. The answer is
//! printed as a table per output, or (`--json`) as the REST protocol's JSON response.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use mercator_proto::inference::{
    self as pb, grpc_inference_service_client::GrpcInferenceServiceClient,
};
use mercator_runtime::{DType, TensorData};

use super::call::Target;
use super::table;
use crate::rest::infer::{BinaryOutputs, parse, response_body};
use crate::v2::tensors::decode_raw;

/// Rows of each output printed in a table; `--json` prints all.
const ROWS_SHOWN: usize = 20;

/// `mercator infer MODEL --input FILE`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// The model.
    pub model: String,
    /// The request: a V2 JSON inference body (`-` reads standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Where to call.
    #[command(flatten)]
    pub target: Target,
}

/// Runs `mercator infer`.
pub async fn run(args: InferArgs) -> anyhow::Result<()> {
    let body = if args.input.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        buf
    } else {
        std::fs::read(&args.input)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.input.display()))?
    };
    let t = &args.target;
    let (request, _) = parse(
        &args.model,
        &t.version,
        &axum::http::HeaderMap::new(),
        &bytes::Bytes::from(body),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
    let channel = t.channel().await?;
    let response = GrpcInferenceServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .model_infer(request)
        .await
        .map_err(super::call::failed)?
        .into_inner();
    if t.json {
        let (json, _) = response_body(&response, &BinaryOutputs::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let value: serde_json::Value = serde_json::from_slice(&json)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{}@{}:", response.model_name, response.model_version);
    for (k, v) in &response.parameters {
        println!("  {k} = {}", crate::rest::infer::parameter_json(v));
    }
    for (i, output) in response.outputs.iter().enumerate() {
        print_output(output, response.raw_output_contents.get(i))?;
    }
    Ok(())
}

/// One output as a table: a row per batch row (its values, flattened).
fn print_output(
    output: &pb::model_infer_response::InferOutputTensor,
    raw: Option<&Vec<u8>>,
) -> anyhow::Result<()> {
    let dtype = DType::parse(&output.datatype).ok_or_else(|| {
        anyhow::anyhow!("output {} has datatype {}", output.name, output.datatype)
    })?;
    let count = output
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
        .ok_or_else(|| anyhow::anyhow!("output {} has shape {:?}", output.name, output.shape))?;
    let data = decode_raw(dtype, raw.map_or(&[][..], Vec::as_slice), count)
        .map_err(|e| anyhow::anyhow!("output {}: {e}", output.name))?;
    let rows = output
        .shape
        .first()
        .map_or(1, |&r| usize::try_from(r).unwrap_or(0))
        .max(1);
    let width = count / rows;
    println!("\n{} {} {:?}", output.name, output.datatype, output.shape);
    let cells: Vec<String> = match &data {
        TensorData::Bytes(v) => v
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect(),
        TensorData::Bool(v) => v.iter().map(bool::to_string).collect(),
        other => other.to_f64().iter().map(|x| format!("{x:.6}")).collect(),
    };
    let table_rows: Vec<Vec<String>> = cells
        .chunks(width.max(1))
        .take(ROWS_SHOWN)
        .enumerate()
        .map(|(r, chunk)| {
            let mut row = vec![r.to_string()];
            row.push(chunk.join(" "));
            row
        })
        .collect();
    table::print(&["ROW", "VALUES"], &table_rows);
    if rows > ROWS_SHOWN {
        println!("… {} more rows (--json prints all)", rows - ROWS_SHOWN);
    }
    Ok(())
}
