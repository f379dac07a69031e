//! `mercator experiments report MODEL`: a running server's report of a churn model's
//! runbook experiments (each rule's treated and control groups, their outcome rates, the
//! difference with its 95% interval and p-value), as a table or `--json`.

use clap::{Args, Subcommand};
use mercator_proto::v1::{self as pb, monitoring_client::MonitoringClient};

use super::table;

/// `mercator experiments`.
#[derive(Debug, Args)]
pub struct ExperimentsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ExperimentsCommand,
}

/// The `experiments` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// Report the experiments of a model's runbook.
    Report(ReportArgs),
}

/// `mercator experiments report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The churn model.
    pub model: String,
    /// Days of predictions read, back from now [default: the server's
    /// `prediction_log.quality_window_days`].
    #[arg(long, default_value_t = 0.0)]
    pub window_days: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw each experiment's uplift with its interval to this file (`.png`,
    /// `.svg` or `.html`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// The server's gRPC URL.
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
}

fn share(x: u64, n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{:.4}", x as f64 / n as f64)
    }
}

fn number(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.4}"))
}

/// Runs `mercator experiments`.
pub async fn run(args: ExperimentsArgs) -> anyhow::Result<()> {
    let ExperimentsCommand::Report(args) = args.command;
    let channel = super::remote::connect(&args.server, &args.credential).await?;
    let resp = MonitoringClient::new(channel)
        .get_experiments(pb::GetExperimentsRequest {
            model_name: args.model.clone(),
            window_days: args.window_days,
        })
        .await
        .map_err(super::call::failed)?
        .into_inner();
    if let Some(path) = &args.plot {
        super::plot::experiments(&resp, path)?;
    }
    if args.json {
        let experiments: Vec<serde_json::Value> = resp
            .experiments
            .iter()
            .map(|e| {
                serde_json::json!({
                    "experiment": e.experiment, "rule": e.rule, "action": e.action,
                    "treated": e.treated, "treated_outcomes": e.treated_outcomes,
                    "control": e.control, "control_outcomes": e.control_outcomes,
                    "pending": e.pending, "uplift": e.uplift, "lower": e.lower,
                    "upper": e.upper, "z": e.z, "p_value": e.p_value,
                    "cost": e.cost, "cost_per_retained": e.cost_per_retained,
                    "qini_uplift": e.qini_uplift, "qini_risk": e.qini_risk,
                })
            })
            .collect();
        let out = serde_json::json!({
            "model": resp.model_name, "window": resp.window, "experiments": experiments,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} (outcome within {}; DIFF: treated rate minus control rate, negative when the action kept customers):",
        resp.model_name, resp.window
    );
    let rows: Vec<Vec<String>> = resp
        .experiments
        .iter()
        .map(|e| {
            vec![
                e.rule.clone(),
                e.action.clone(),
                e.treated.to_string(),
                share(e.treated_outcomes, e.treated),
                e.control.to_string(),
                share(e.control_outcomes, e.control),
                number(e.uplift),
                format!("[{}, {}]", number(e.lower), number(e.upper)),
                e.p_value.map_or("-".into(), |p| format!("{p:.4}")),
                e.cost_per_retained
                    .map_or("-".into(), |c| format!("{c:.2}")),
                number(e.qini_uplift),
                number(e.qini_risk),
                e.pending.to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "RULE",
            "ACTION",
            "TREATED",
            "RATE",
            "CONTROL",
            "RATE",
            "DIFF",
            "95% CI",
            "P",
            "COST/RETAINED",
            "QINI(UPLIFT)",
            "QINI(RISK)",
            "PENDING",
        ],
        &rows,
    );
    Ok(())
}
