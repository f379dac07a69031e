//! Post-purchase triggers: when a source writes rows for customers (a late delivery, a
//! return, a low NPS), each customer is scored again through the serving envelope (so
//! the score is in the prediction log, with route `trigger`), and when the runbook gives
//! an action for a customer outside its control group, an intervention event is
//! published. A cooldown per (customer, rule), claimed in the online store before the
//! publish, keeps a rule from firing twice for one customer within its window across
//! replicas and across re-deliveries after a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mercator_features::online::PushRow;
use mercator_streams::{Publisher, StreamMetrics, TriggerConfig};
use serde_json::{Map, Value as Json, json};

use crate::api::churn::{CustomerScore, CustomerStatus, Score, ScoreRequest};
use crate::error::ServeError;
use crate::serving::{CallContext, Serving};

/// A message read as a row of the view, with the event as it came (for triggers).
#[derive(Debug)]
pub struct EventRow {
    /// The row written.
    pub row: PushRow,
    /// The message's JSON, carried by an intervention as the event that triggered it.
    pub event: Map<String, Json>,
}

/// Customers scored in one `Churn/Score` call (the rest of a large fetch in more calls).
const SCORE_CHUNK: usize = 256;

/// The `route` of triggered scores in the prediction log.
pub const ROUTE: &str = "trigger";

/// One `[[streams.triggers]]` rule, ready to fire.
pub struct Trigger {
    pub(super) config: TriggerConfig,
    pub(super) cooldown: Duration,
    pub(super) publisher: Arc<Publisher>,
    pub(super) serving: Arc<Serving>,
    pub(super) metrics: StreamMetrics,
}

/// What one customer's trigger did (the metric's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    Published,
    NoAction,
    Control,
    Cooldown,
    NotScored,
}

impl Fired {
    fn label(self) -> &'static str {
        match self {
            Fired::Published => "published",
            Fired::NoAction => "no_action",
            Fired::Control => "control",
            Fired::Cooldown => "cooldown",
            Fired::NotScored => "not_scored",
        }
    }
}

impl Trigger {
    /// Fires for each customer of `rows` (the last row of each, in order of arrival).
    /// An error that may pass (the broker, the store, an overloaded server) is returned,
    /// so the source writes the rows again and fires again; the cooldown keeps what was
    /// published then from being published twice. A request that cannot be scored (no
    /// such model, a model that cannot score customers) is counted and logged, and the
    /// source moves on: waiting would not fix it.
    pub async fn fire(&self, rows: &[EventRow]) -> Result<(), String> {
        let mut last: Vec<&EventRow> = Vec::new();
        for r in rows {
            match last.iter_mut().find(|l| l.row.key == r.row.key) {
                Some(l) => *l = r,
                None => last.push(r),
            }
        }
        for chunk in last.chunks(SCORE_CHUNK) {
            self.chunk(chunk).await?;
        }
        Ok(())
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .triggers
            .with_label_values(&[self.config.name.as_str(), outcome])
            .inc();
    }

    /// Scores `rows`' customers in one call, then acts on each score.
    async fn chunk(&self, rows: &[&EventRow]) -> Result<(), String> {
        let started = Instant::now();
        let ctx = CallContext {
            request_id: Arc::from(uuid::Uuid::now_v7().to_string()),
            principal: format!("trigger:{}", self.config.name),
            route: Some(ROUTE),
        };
        let customers: Vec<String> = rows.iter().map(|r| r.row.key.join("|")).collect();
        let request = ScoreRequest {
            model: self.config.model.clone(),
            version: self.config.version.clone(),
            customer_ids: customers.clone(),
            top_reasons: self.config.top_reasons,
        };
        let method = Score {
            max_customers: SCORE_CHUNK,
        };
        let answer = match crate::api::churn::score(&self.serving, &ctx, &method, request).await {
            Ok(answer) => answer,
            Err(e) if transient(&e) => {
                self.count("failed");
                return Err(format!("trigger {}: {e}", self.config.name));
            }
            Err(e) => {
                tracing::warn!(trigger = %self.config.name, "cannot score customers: {e}");
                for _ in rows {
                    self.count("failed");
                }
                return Ok(());
            }
        };
        for (score, row) in answer.scores.iter().zip(rows) {
            let fired = self
                .act(&answer.model, score, &ctx, row)
                .await
                .map_err(|e| {
                    self.count("failed");
                    format!("trigger {}: {e}", self.config.name)
                })?;
            self.count(fired.label());
            if fired == Fired::Published {
                self.metrics
                    .trigger_seconds
                    .with_label_values(&[self.config.name.as_str()])
                    .observe(started.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// What one customer's score leads to: nothing (no action, in control, cooling
    /// down, not scored), or an intervention published.
    async fn act(
        &self,
        model: &str,
        score: &CustomerScore,
        ctx: &CallContext,
        row: &EventRow,
    ) -> Result<Fired, ServeError> {
        if score.status != CustomerStatus::Scored {
            return Ok(Fired::NotScored);
        }
        let Some(intervention) = &score.intervention else {
            return Ok(Fired::NoAction);
        };
        if intervention.control {
            return Ok(Fired::Control);
        }
        let customer = score.customer_id.as_str();
        let key = format!("trigger:{}:{customer}", self.config.name);
        let features = &self.serving.features;
        let claimed = features
            .claim_state(&key, ctx.request_id.as_bytes(), self.cooldown)
            .await
            .map_err(|e| ServeError::Unavailable(format!("the cooldown's store: {e}")))?;
        if !claimed {
            return Ok(Fired::Cooldown);
        }
        let event = self.event(model, score, ctx, row);
        let published = self
            .publisher
            .publish(
                customer.as_bytes(),
                event.to_string().into_bytes(),
                Default::default(),
            )
            .await;
        if let Err(e) = published {
            // Not published: free the cooldown so the retry can publish.
            let _ = features.delete_state(&key).await;
            return Err(ServeError::Unavailable(e.to_string()));
        }
        Ok(Fired::Published)
    }

    /// The intervention event: who, what the model said and why, what to do, under
    /// which rule, and the event that set it off.
    fn event(&self, model: &str, score: &CustomerScore, ctx: &CallContext, row: &EventRow) -> Json {
        let intervention = score.intervention.as_ref();
        let reasons: Vec<Json> = score
            .reasons
            .iter()
            .map(|r| {
                json!({
                    "feature": r.feature,
                    "value": finite(r.value),
                    "contribution": finite(r.contribution),
                    "direction": if r.raises_risk { "raises_risk" } else { "lowers_risk" },
                })
            })
            .collect();
        let event_time = chrono::DateTime::from_timestamp_micros(row.row.event_time_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        json!({
            "customer_id": score.customer_id,
            "model": model,
            "version": score.model_version,
            "probability": finite(score.probability),
            "risk_band": score.risk_band,
            "action": intervention.map(|i| i.action.as_str()),
            "rule": self.config.name,
            "runbook_rule": intervention.map(|i| i.rule.as_str()),
            "experiment": intervention.map(|i| i.experiment.as_str()),
            "uplift": score.uplift.map(finite),
            "reasons": reasons,
            "request_id": &*ctx.request_id,
            "source": self.config.source,
            "event": row.event,
            "event_time": event_time,
            "triggered_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}

/// A number JSON can carry (NaN and infinities become null).
fn finite(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

/// Whether waiting and trying again may work.
fn transient(e: &ServeError) -> bool {
    matches!(
        e.code(),
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
    )
}
