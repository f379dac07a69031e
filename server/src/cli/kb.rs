//! `mercator kb load NAME FILE.jsonl`: a knowledge base built from the shop's passages
//! (`{"id", "title", "text", "url"}` a line) with a served sentence encoder (its V2
//! `embedding` output, 32 passages a call) and registered as version of model NAME (kind
//! `kb`), so it is promoted and rolled back like any model. One registration message
//! holds it: at 384 dimensions, some 40,000 passages fit the default 64 MiB.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use mercator_proto::inference::{
    InferTensorContents, ModelInferRequest,
    grpc_inference_service_client::GrpcInferenceServiceClient,
    model_infer_request::{InferInputTensor, InferRequestedOutputTensor},
};
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_runtime::kinds::kb::{KbSpec, Passage, version_files};

/// Passages embedded per call.
const BATCH: usize = 32;

/// `mercator kb`.
#[derive(Debug, Args)]
pub struct KbArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KbCommand,
}

/// What `mercator kb` does.
#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Embed a JSON-lines file of passages and register it as a knowledge base.
    Load(LoadArgs),
}

/// `mercator kb load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The knowledge base (a model name).
    pub name: String,
    /// JSON lines, one passage each: `{"id", "title", "text", "url"}`.
    pub file: PathBuf,
    /// The served encoder model that embeds the passages (and later the questions).
    #[arg(long, default_value = "intent")]
    pub encoder: String,
    /// Its version or alias (default: its champion).
    #[arg(long, default_value = "")]
    pub encoder_version: String,
    /// The alias the new version gets.
    #[arg(long, default_value = "champion")]
    pub alias: String,
    /// Passages returned per V2 query.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// The server's gRPC URL.
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
}

/// The passages of a JSON-lines file, each checked, named by line.
fn read_passages(file: &PathBuf) -> anyhow::Result<Vec<Passage>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let p: Passage = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a passage", file.display(), i + 1))?;
        anyhow::ensure!(
            !p.id.trim().is_empty(),
            "{} line {}: id is empty",
            file.display(),
            i + 1
        );
        anyhow::ensure!(
            !p.text.trim().is_empty(),
            "{} line {}: text is empty",
            file.display(),
            i + 1
        );
        anyhow::ensure!(
            seen.insert(p.id.clone()),
            "{} line {}: id '{}' twice",
            file.display(),
            i + 1,
            p.id
        );
        out.push(p);
    }
    anyhow::ensure!(!out.is_empty(), "{}: no passages", file.display());
    Ok(out)
}

/// Runs `mercator kb`.
pub async fn run(args: KbArgs) -> anyhow::Result<()> {
    let KbCommand::Load(args) = args.command;
    let passages = read_passages(&args.file)?;
    let channel = super::remote::connect(&args.server, &args.credential).await?;
    let mut v2 =
        GrpcInferenceServiceClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
    let (mut embeddings, mut dim, mut version) = (Vec::new(), 0, String::new());
    let progress = super::progress::Progress::spinner(format!(
        "embedding {} passages with {}",
        passages.len(),
        args.encoder
    ));
    for chunk in passages.chunks(BATCH) {
        let texts: Vec<Vec<u8>> = chunk
            .iter()
            .map(|p| {
                format!("{}\n{}", p.title, p.text)
                    .trim()
                    .as_bytes()
                    .to_vec()
            })
            .collect();
        let answer = v2
            .model_infer(ModelInferRequest {
                model_name: args.encoder.clone(),
                model_version: args.encoder_version.clone(),
                inputs: vec![InferInputTensor {
                    name: "text".into(),
                    datatype: "BYTES".into(),
                    shape: vec![texts.len() as i64],
                    contents: Some(InferTensorContents {
                        bytes_contents: texts,
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                outputs: vec![InferRequestedOutputTensor {
                    name: "embedding".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .map_err(super::call::failed)?
            .into_inner();
        let output = answer
            .outputs
            .first()
            .context("the encoder gave no embedding")?;
        dim = output.shape.get(1).copied().unwrap_or(0).max(0) as usize;
        version = answer.model_version;
        let raw = answer
            .raw_output_contents
            .first()
            .context("no raw embedding")?;
        embeddings.extend(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    progress.finish();
    let spec = KbSpec {
        passages: "passages.jsonl".into(),
        encoder: args.encoder.clone(),
        encoder_version: version.clone(),
    };
    let (manifest, mut files) = version_files(&passages, &embeddings, dim, &spec, args.top_k)?;
    files.push((
        mercator_runtime::manifest::MANIFEST_FILE.to_string(),
        manifest,
    ));
    let registered = RegistryClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .register_version(pb::RegisterVersionRequest {
            model: args.name.clone(),
            files: files
                .into_iter()
                .map(|(path, content)| pb::UploadFile { path, content })
                .collect(),
            alias: args.alias.clone(),
            description: format!("knowledge base from {}", args.file.display()),
            ..Default::default()
        })
        .await
        .map_err(super::call::failed)?
        .into_inner()
        .version
        .context("empty response")?;
    println!(
        "{} passages embedded by {}@{version} ({dim} dimensions): registered {}@{}",
        passages.len(),
        args.encoder,
        args.name,
        registered.version
    );
    Ok(())
}
