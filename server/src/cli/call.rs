//! `mercator score`, `mercator classify`, `mercator forecast`: call a running server's
//! typed APIs and print the answer as a table (or `--json`), naming the version that
//! answered — the first calls a newcomer makes, without grpcurl.

use clap::Args;
use mercator_proto::v1::{
    self as pb, churn_client::ChurnClient, forecasting_client::ForecastingClient,
    intent_client::IntentClient,
};

use super::table;

/// Where the call goes, shared by the three commands.
#[derive(Debug, Args)]
pub struct Target {
    /// The server's gRPC URL.
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
    /// A version number or alias (default: the model's traffic split, champion alone
    /// unless one is set).
    #[arg(long, default_value = "")]
    pub version: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `mercator score MODEL CUSTOMER_ID…`: churn scores by customer id.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The churn model.
    pub model: String,
    /// Customer ids; the server reads their features.
    #[arg(required = true)]
    pub customer_ids: Vec<String>,
    /// Explain each score by its K largest contributions to the churn log-odds.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub reasons: u32,
    /// Where to call.
    #[command(flatten)]
    pub target: Target,
}

/// `mercator classify MODEL TEXT`: a chatbot message's intent.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The intent model.
    pub model: String,
    /// The customer's message.
    pub text: String,
    /// How many intents to list.
    #[arg(long, default_value_t = 3)]
    pub top_k: u32,
    /// The day relative dates are read from (YYYY-MM-DD; default today).
    #[arg(long, default_value = "")]
    pub reference_date: String,
    /// The conversation: the server remembers its turns and the details given.
    #[arg(long, default_value = "")]
    pub session_id: String,
    /// Knowledge-base passages to answer with.
    #[arg(long, default_value_t = 0)]
    pub answers: u32,
    /// Where to call.
    #[command(flatten)]
    pub target: Target,
}

/// `mercator forecast MODEL SKU LOCATION`: a series' demand forecast, from the history
/// the server's feature store holds.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// The forecaster.
    pub model: String,
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location: String,
    /// Days to forecast.
    #[arg(long, default_value_t = 7)]
    pub horizon: u32,
    /// Where to call.
    #[command(flatten)]
    pub target: Target,
}

impl Target {
    /// A connection to the server, with the credential.
    pub(crate) async fn channel(&self) -> anyhow::Result<super::remote::Transport> {
        super::remote::connect(&self.server, &self.credential).await
    }
}

pub(crate) fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// Runs `mercator score`.
pub async fn score(args: ScoreArgs) -> anyhow::Result<()> {
    let t = &args.target;
    let channel = t.channel().await?;
    let resp = ChurnClient::new(channel)
        .score(pb::ScoreRequest {
            model_name: args.model.clone(),
            model_version: t.version.clone(),
            customer_ids: args.customer_ids.clone(),
            top_reasons: args.reasons,
        })
        .await
        .map_err(failed)?
        .into_inner();
    let reason_json = |r: &pb::Reason| {
        serde_json::json!({
            "feature": r.feature,
            "value": if r.value.is_nan() { serde_json::Value::Null } else { r.value.into() },
            "source": r.source().as_str_name(),
            "contribution": r.contribution,
            "direction": r.direction().as_str_name(),
        })
    };
    if t.json {
        let scores: Vec<_> = resp
            .scores
            .iter()
            .map(|s| {
                serde_json::json!({
                    "customer_id": s.customer_id,
                    "status": s.status().as_str_name(),
                    "probability": s.probability,
                    "risk_band": s.risk_band,
                    "missing_features": s.missing_features,
                    "expired_features": s.expired_features,
                    "model_version": s.model_version,
                    "reasons": s.reasons.iter().map(reason_json).collect::<Vec<_>>(),
                    "uplift": s.uplift,
                    "intervention": s.intervention.as_ref().map(|i| serde_json::json!({
                        "action": i.action, "rule": i.rule,
                        "control": i.control, "experiment": i.experiment,
                    })),
                })
            })
            .collect();
        let out = serde_json::json!({"model": resp.model_name, "scores": scores});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    // The uplift column only for a model whose runbook reads an uplift model.
    let uplift = resp.scores.iter().any(|s| s.uplift.is_some());
    let rows: Vec<Vec<String>> = resp
        .scores
        .iter()
        .map(|s| {
            let scored = s.status() == pb::customer_score::Status::Scored;
            let mut row = vec![
                s.customer_id.clone(),
                s.status().as_str_name().to_string(),
                if scored {
                    format!("{:.3}", s.probability)
                } else {
                    "-".into()
                },
                s.risk_band.clone(),
                s.model_version.clone(),
                s.missing_features.len().to_string(),
            ];
            if uplift {
                row.push(s.uplift.map_or("-".into(), |u| format!("{u:+.3}")));
            }
            row.push(s.intervention.as_ref().map_or("-".into(), |i| {
                if i.control {
                    format!("none: control of {} ({})", i.action, i.rule)
                } else {
                    format!("{} ({})", i.action, i.rule)
                }
            }));
            row
        })
        .collect();
    println!("{}:", resp.model_name);
    let mut header = vec![
        "CUSTOMER", "STATUS", "P(CHURN)", "BAND", "VERSION", "MISSING",
    ];
    if uplift {
        header.push("UPLIFT");
    }
    header.push("ACTION (RULE)");
    table::print(&header, &rows);
    let explained: Vec<Vec<String>> = resp
        .scores
        .iter()
        .flat_map(|s| {
            s.reasons.iter().map(|r| {
                vec![
                    s.customer_id.clone(),
                    r.feature.clone(),
                    match r.source() {
                        pb::reason::Source::Present => format!("{}", r.value as f32),
                        other => format!(
                            "{} ({})",
                            r.value as f32,
                            other.as_str_name().to_lowercase()
                        ),
                    },
                    format!("{:+.3}", r.contribution),
                ]
            })
        })
        .collect();
    if !explained.is_empty() {
        println!("\nreasons (contributions to the churn log-odds):");
        table::print(
            &["CUSTOMER", "FEATURE", "VALUE", "CONTRIBUTION"],
            &explained,
        );
    }
    Ok(())
}

/// Runs `mercator classify`.
pub async fn classify(args: ClassifyArgs) -> anyhow::Result<()> {
    let t = &args.target;
    let channel = t.channel().await?;
    let resp = IntentClient::new(channel)
        .classify(pb::ClassifyRequest {
            model_name: args.model.clone(),
            model_version: t.version.clone(),
            text: args.text.clone().into_bytes(),
            top_k: args.top_k,
            reference_date: args.reference_date.clone(),
            session_id: args.session_id.clone(),
            answer_top_k: args.answers,
        })
        .await
        .map_err(failed)?
        .into_inner();
    if t.json {
        let out = serde_json::json!({
            "model": resp.model_name,
            "version": resp.model_version,
            "intents": resp.intents.iter().map(|i| serde_json::json!({
                "intent": i.intent, "probability": i.probability,
            })).collect::<Vec<_>>(),
            "action": resp.action,
            "handoff": resp.handoff,
            "handoff_reason": resp.handoff_reason,
            "slots": resp.slots.iter().map(|s| serde_json::json!({
                "name": s.name, "value": s.value, "text": s.text, "start": s.start, "end": s.end,
            })).collect::<Vec<_>>(),
            "missing_slots": resp.missing_slots,
            "turn": resp.turn,
            "answers": resp.answers.iter().map(|a| serde_json::json!({
                "id": a.id, "title": a.title, "url": a.url, "score": a.score,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}@{}: action {}{}",
        resp.model_name,
        resp.model_version,
        if resp.action.is_empty() {
            "-"
        } else {
            &resp.action
        },
        if resp.handoff {
            format!(", hand off to a human ({})", resp.handoff_reason)
        } else {
            String::new()
        }
    );
    let rows: Vec<Vec<String>> = resp
        .intents
        .iter()
        .map(|i| vec![i.intent.clone(), format!("{:.3}", i.probability)])
        .collect();
    table::print(&["INTENT", "PROBABILITY"], &rows);
    if !resp.slots.is_empty() || !resp.missing_slots.is_empty() {
        let slots: Vec<Vec<String>> = resp
            .slots
            .iter()
            .map(|s| {
                let from = if s.remembered {
                    format!("{:?}, an earlier turn", s.text)
                } else {
                    format!("{:?} at {}..{}", s.text, s.start, s.end)
                };
                vec![s.name.clone(), s.value.clone(), from]
            })
            .chain(
                resp.missing_slots
                    .iter()
                    .map(|m| vec![m.clone(), "(missing)".into(), String::new()]),
            )
            .collect();
        println!();
        table::print(&["SLOT", "VALUE", "FROM"], &slots);
    }
    if !resp.answers.is_empty() {
        let answers: Vec<Vec<String>> = resp
            .answers
            .iter()
            .map(|a| vec![a.id.clone(), format!("{:.3}", a.score), a.title.clone()])
            .collect();
        println!();
        table::print(&["ANSWER", "SCORE", "TITLE"], &answers);
    }
    Ok(())
}

/// Runs `mercator forecast`.
pub async fn forecast(args: ForecastArgs) -> anyhow::Result<()> {
    let t = &args.target;
    let channel = t.channel().await?;
    let resp = ForecastingClient::new(channel)
        .forecast(pb::ForecastRequest {
            model_name: args.model.clone(),
            model_version: t.version.clone(),
            series: Some(pb::SeriesId {
                sku_id: args.sku.clone(),
                location_id: args.location.clone(),
            }),
            horizon_days: args.horizon,
            ..Default::default()
        })
        .await
        .map_err(failed)?
        .into_inner();
    if t.json {
        let out = serde_json::json!({
            "model": resp.model_name,
            "version": resp.model_version,
            "quantiles": resp.quantiles,
            "history_last_date": resp.history_last_date,
            "points": resp.points.iter().map(|p| serde_json::json!({
                "date": p.date, "mean": p.mean, "quantiles": p.quantiles,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}@{}: {} at {}, history to {}",
        resp.model_name, resp.model_version, args.sku, args.location, resp.history_last_date
    );
    let mut header = vec!["DATE".to_string(), "MEAN".to_string()];
    header.extend(resp.quantiles.iter().map(|q| format!("Q{q}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = resp
        .points
        .iter()
        .map(|p| {
            let mut row = vec![p.date.clone(), format!("{:.1}", p.mean)];
            row.extend(p.quantiles.iter().map(|q| format!("{q:.1}")));
            row
        })
        .collect();
    table::print(&header, &rows);
    Ok(())
}
