//! `mercator quality NAME`: a running server's live quality of a model (its prediction
//! log judged against the outcomes), per version and route, as a table, `--json`, or a
//! picture (`--plot FILE.png|.svg|.html`: the calibration curve and quality over time).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use mercator_proto::v1::{self as pb, monitoring_client::MonitoringClient};

use super::table;

/// `mercator quality`.
#[derive(Debug, Args)]
pub struct QualityArgs {
    /// The model.
    pub model: String,
    /// Days of predictions judged, back from now [default: the server's
    /// `prediction_log.quality_window_days`].
    #[arg(long, default_value_t = 0.0)]
    pub window_days: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the calibration curve and quality over time to this file (`.png`,
    /// `.svg` or `.html`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// The server's gRPC URL.
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
}

/// Runs `mercator quality`.
pub async fn run(args: QualityArgs) -> anyhow::Result<()> {
    let channel = super::remote::connect(&args.server, &args.credential).await?;
    let resp = MonitoringClient::new(channel)
        .get_quality(pb::GetQualityRequest {
            model_name: args.model.clone(),
            window_days: args.window_days,
        })
        .await
        .map_err(super::call::failed)?
        .into_inner();
    if let Some(path) = &args.plot {
        super::plot::quality(&resp, path)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&resp))?);
        return Ok(());
    }
    let window = if resp.window.is_empty() {
        String::new()
    } else {
        format!(", outcome window {}", resp.window)
    };
    println!("{} ({}{window}):", resp.model_name, resp.kind);
    let names: Vec<String> = resp
        .versions
        .iter()
        .flat_map(|v| v.metrics.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut header = vec!["VERSION", "ROUTE", "JUDGED", "PENDING"];
    let upper: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
    header.extend(upper.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = resp
        .versions
        .iter()
        .map(|v| {
            let mut row = vec![
                v.model_version.clone(),
                v.route.clone(),
                v.judged.to_string(),
                v.pending.to_string(),
            ];
            row.extend(
                names
                    .iter()
                    .map(|n| v.metrics.get(n).map_or("-".into(), |x| format!("{x:.4}"))),
            );
            row
        })
        .collect();
    table::print(&header, &rows);
    if let Some(path) = &args.plot {
        println!("drawn to {}", path.display());
    }
    Ok(())
}

/// The answer as JSON: metrics as they came (full precision).
fn to_json(resp: &pb::GetQualityResponse) -> serde_json::Value {
    let sorted = |m: &std::collections::HashMap<String, f64>| -> BTreeMap<String, f64> {
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    serde_json::json!({
        "model": resp.model_name,
        "kind": resp.kind,
        "window": resp.window,
        "evaluated_at": resp.evaluated_at.map(|t| t.seconds),
        "versions": resp.versions.iter().map(|v| serde_json::json!({
            "version": v.model_version,
            "route": v.route,
            "judged": v.judged,
            "pending": v.pending,
            "metrics": sorted(&v.metrics),
            "calibration": v.calibration.iter().map(|b| serde_json::json!({
                "lower": b.lower, "upper": b.upper, "count": b.count,
                "mean_predicted": b.mean_predicted, "observed": b.observed,
            })).collect::<Vec<_>>(),
            "days": v.days.iter().map(|d| serde_json::json!({
                "date": d.date, "judged": d.judged, "metrics": sorted(&d.metrics),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
