//! `mercator drift NAME[@VERSION]`: a running server's latest drift evaluation of a
//! model's versions, the features ranked by PSI.

use clap::Args;
use mercator_proto::v1::{self as pb, monitoring_client::MonitoringClient};

use super::table;

/// `mercator drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// NAME, or NAME@VERSION (a number or an alias).
    pub reference: String,
    /// The server's gRPC URL (drift is measured by each server on its own traffic).
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn number(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Runs `mercator drift`.
pub async fn run(args: DriftArgs) -> anyhow::Result<()> {
    let (model, version) = match args.reference.split_once('@') {
        Some((m, v)) => (m.to_string(), v.to_string()),
        None => (args.reference.clone(), String::new()),
    };
    let channel = super::remote::connect(&args.server, &args.credential).await?;
    let resp = MonitoringClient::new(channel)
        .get_drift(pb::GetDriftRequest {
            model_name: model.clone(),
            model_version: version,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    if args.json {
        let versions: Vec<serde_json::Value> = resp
            .versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "model": v.model_name,
                    "version": v.model_version,
                    "profiled": v.profiled,
                    "samples": v.samples,
                    "min_samples": v.min_samples,
                    "features": v.features.iter().map(|f| serde_json::json!({
                        "name": f.name,
                        "role": if f.prediction { "prediction" } else { "input" },
                        "samples": f.samples,
                        "psi": f.psi,
                        "ks": f.ks,
                        "js_distance": f.js_distance,
                        "null_rate_shift": f.null_rate_shift,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(());
    }
    for v in &resp.versions {
        println!("{model}@{}", v.model_version);
        if !v.profiled {
            println!("  no training profile: register the version with a profile.json");
            continue;
        }
        if v.features.is_empty() {
            println!(
                "  {} rows in the window; scores start at {} rows",
                v.samples, v.min_samples
            );
            continue;
        }
        println!("  {} rows in the window", v.samples);
        let rows: Vec<Vec<String>> = v
            .features
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    if f.prediction { "prediction" } else { "input" }.into(),
                    f.samples.to_string(),
                    number(f.psi),
                    number(f.ks),
                    number(f.js_distance),
                    format!("{:+.4}", f.null_rate_shift),
                ]
            })
            .collect();
        table::print(
            &[
                "FEATURE",
                "ROLE",
                "SAMPLES",
                "PSI",
                "KS",
                "JS",
                "NULL SHIFT",
            ],
            &rows,
        );
    }
    Ok(())
}
