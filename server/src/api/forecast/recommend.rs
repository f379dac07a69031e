//! `Inventory/Recommend`: a replenishment order for a SKU at a location, from the
//! distribution of its demand over the protection interval (lead time plus review period)
//! that the forecaster gives (`Forecaster::total_demand`: exact for ETS models, an
//! approximation for quantile-only ones) and the order-up-to policy of
//! `runtime::replenish`. The history is read from the feature store as for a forecast, or
//! sent inline (a what-if, a backtest); "today" is the day after its last day.

use std::sync::Arc;

use super::types;
use mercator_runtime::RuntimeError;
use mercator_runtime::forecast::{self, Forecaster, Series};
use mercator_runtime::replenish::{
    self, LeadTime, OnOrder, PROBABILITY_SUM_TOLERANCE, Situation, Target,
};

use super::history::{History, history_error, inline_history, read_histories, store_keys};
use super::{ForecastLimits, forecaster_of, key_of, model_or_default, route_key, series_label};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{Method, Serving, ShadowPolicy};

/// The `method` label of `Inventory/Recommend`.
pub const RECOMMEND: &str = "Inventory.Recommend";
/// The `method` label of `Inventory/RecommendBatch`.
pub const RECOMMEND_BATCH: &str = "Inventory.RecommendBatch";
/// Levels of the protection interval's demand reported when a request asks for none.
const DEFAULT_LEVELS: [f64; 3] = [0.5, 0.9, 0.95];

/// What the configuration says about recommendations.
#[derive(Debug, Clone, Copy)]
pub struct RecommendSettings {
    /// The forecasting limits (the protection interval is a horizon).
    pub limits: ForecastLimits,
    /// Orders worth more than this need a human's approval.
    pub approval_order_value: Option<f64>,
}

/// `Inventory/Recommend` as the envelope runs it.
#[derive(Debug, Clone, Copy)]
pub struct Recommend {
    /// The configured settings.
    pub settings: RecommendSettings,
}

impl Method for Recommend {
    type Request = types::RecommendRequest;
    type Answer = types::RecommendResponse;
    const NAME: &'static str = RECOMMEND;
    /// A recommendation is a forecast turned into an order: the forecaster's shadows are
    /// judged on `Forecast` calls already, and a shadow's order would count in the
    /// recommendation metrics as if it had been given.
    const SHADOWS: ShadowPolicy = ShadowPolicy::Off(
        "shadows are judged on Forecast; a shadow order would count as a recommendation given",
    );

    fn instances(&self, answer: &types::RecommendResponse) -> Vec<crate::predlog::Instance> {
        vec![instance(answer)]
    }

    async fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: types::RecommendRequest,
    ) -> Result<types::RecommendResponse, ServeError> {
        recommend_on(serving, self.settings, loaded, req).await
    }
}

/// A recommendation as the prediction log's instance: its series, order and reorder point.
pub(super) fn instance(answer: &types::RecommendResponse) -> crate::predlog::Instance {
    crate::predlog::Instance {
        entity: super::log_entity(answer.series.as_ref()),
        outputs: crate::predlog::Outputs {
            order_quantity: Some(answer.order_quantity),
            reorder_point: Some(answer.reorder_point),
            mean: Some(answer.demand_mean),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl crate::serving::shadow::Predicts for types::RecommendResponse {
    /// The order quantity.
    fn predictions(&self) -> crate::serving::shadow::Predictions {
        crate::serving::shadow::Predictions {
            values: vec![self.order_quantity],
            labels: Vec::new(),
        }
    }
}

/// Answers `Inventory/Recommend`. A call that names no version follows the model's
/// traffic split, placed by its series.
pub async fn recommend(
    serving: &Arc<Serving>,
    ctx: &crate::serving::CallContext,
    method: &Recommend,
    req: types::RecommendRequest,
) -> Result<types::RecommendResponse, ServeError> {
    let key = route_key(req.series.as_ref());
    let (model, version) = (model_or_default(&req.model_name), req.model_version.clone());
    let target = crate::serving::Target {
        model: &model,
        version: &version,
        entity: key.as_deref(),
    };
    serving.call(ctx, method, target, req).await
}

/// The request's lead time, checked, naming its fields.
fn lead_time(req: &types::RecommendRequest) -> Result<LeadTime, ServeError> {
    if !req.lead_time_distribution.is_empty() {
        for (i, o) in req.lead_time_distribution.iter().enumerate() {
            if !(o.probability.is_finite() && o.probability >= 0.0) {
                return Err(ServeError::invalid(
                    format!("lead_time_distribution[{i}].probability"),
                    "must be a finite number ≥ 0",
                ));
            }
        }
        let total: f64 = req
            .lead_time_distribution
            .iter()
            .map(|o| o.probability)
            .sum();
        if (total - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
            return Err(ServeError::invalid(
                "lead_time_distribution",
                format!(
                    "the probabilities sum to {total}, not 1 (within \
                     {PROBABILITY_SUM_TOLERANCE:e}): give every day's probability"
                ),
            ));
        }
        return Ok(LeadTime::Empirical(
            req.lead_time_distribution
                .iter()
                .map(|o| (o.days, o.probability))
                .collect(),
        ));
    }
    for (field, v) in [
        ("lead_time_days", req.lead_time_days),
        ("lead_time_std_days", req.lead_time_std_days),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(ServeError::invalid(
                field,
                format!("{v} must be a finite number ≥ 0"),
            ));
        }
    }
    Ok(LeadTime::Normal {
        mean: req.lead_time_days,
        sd: req.lead_time_std_days,
    })
}

/// A runtime refusal of the request's fields, named as the request names them.
fn policy_error(e: RuntimeError) -> ServeError {
    match e {
        RuntimeError::InvalidInput { input, message } => {
            let field = if input == "lead_time" {
                "lead_time_days".to_string()
            } else {
                input
            };
            ServeError::invalid(field, message)
        }
        other => other.into(),
    }
}

/// A request checked against the forecaster, before its history is read.
#[derive(Debug)]
pub(super) struct Checked {
    series: types::SeriesId,
    key: Vec<String>,
    levels: Vec<f64>,
    situation: Situation,
    on_order: Vec<types::OnOrder>,
    /// The history sent inline, checked.
    pub(super) inline: Option<History>,
}

impl Checked {
    /// The series the request names.
    pub(super) fn series(&self) -> &types::SeriesId {
        &self.series
    }
}

/// Checks a request's fields (no I/O), naming them.
pub(super) fn check(
    f: &dyn Forecaster,
    limits: ForecastLimits,
    req: types::RecommendRequest,
) -> Result<Checked, ServeError> {
    let series = req.series.clone().unwrap_or_default();
    let key = key_of(&series, f.key_parts(), "series")?;
    let levels = if req.quantiles.is_empty() {
        DEFAULT_LEVELS.to_vec()
    } else {
        req.quantiles.clone()
    };
    if levels.len() > 99 {
        return Err(ServeError::invalid("quantiles", "at most 99 levels"));
    }
    if let Some((i, q)) = levels
        .iter()
        .enumerate()
        .find(|(_, q)| !(**q > 0.0 && **q < 1.0))
    {
        return Err(ServeError::invalid(
            format!("quantiles[{i}]"),
            format!("{q} is not in (0, 1)"),
        ));
    }
    let target = match req.target {
        Some(types::ServiceTarget::CycleServiceLevel(a)) => Target::CycleServiceLevel(a),
        Some(types::ServiceTarget::FillRate(b)) => Target::FillRate(b),
        None => {
            return Err(ServeError::invalid(
                "target",
                "give a cycle_service_level or a fill_rate",
            ));
        }
    };
    let lead = lead_time(&req)?;
    let longest = u64::from(lead.longest_days()) + u64::from(req.review_period_days);
    forecast::check_horizon(
        f,
        usize::try_from(longest).unwrap_or(usize::MAX),
        limits.max_horizon_days,
    )
    .map_err(|e| {
        ServeError::invalid(
            "lead_time_days",
            format!("lead time and review period reach {longest} days ahead: {e}"),
        )
    })?;
    let inline = req
        .history
        .clone()
        .map(|h| inline_history(h, limits.max_history_days))
        .transpose()?;
    Ok(Checked {
        series,
        key,
        levels,
        situation: Situation {
            on_hand: req.on_hand,
            backordered: req.backordered,
            on_order: Vec::new(),
            lead_time: lead,
            review_days: req.review_period_days,
            target,
            pack_size: req.pack_size.unwrap_or(1.0),
            min_order_quantity: req.min_order_quantity,
            unit_cost: req.unit_cost,
        },
        on_order: req.on_order,
        inline,
    })
}

/// Computes a checked request's recommendation from its history (synchronous: callers
/// run it inline or on the blocking pool) and counts its outcome.
pub(super) fn compute(
    serving: &Serving,
    settings: RecommendSettings,
    loaded: &LoadedModel,
    checked: Checked,
    history: History,
) -> Result<types::RecommendResponse, ServeError> {
    let Checked {
        series,
        key,
        levels,
        mut situation,
        on_order,
        inline,
    } = checked;
    let inline = inline.is_some();
    let today = history.last_date + chrono::Days::new(1);
    for (i, o) in on_order.iter().enumerate() {
        let field = format!("on_order[{i}].arrival_date");
        let date = forecast::parse_date(&o.arrival_date).ok_or_else(|| {
            ServeError::invalid(
                &field,
                format!("'{}' is not a YYYY-MM-DD date", o.arrival_date),
            )
        })?;
        let days = u32::try_from((date - today).num_days()).map_err(|_| {
            ServeError::invalid(
                &field,
                format!("{date} is before today ({today}): count it on hand"),
            )
        })?;
        situation.on_order.push(OnOrder {
            quantity: o.quantity,
            arrives_in_days: days,
        });
    }
    let f = forecaster_of(loaded)?;
    let s = Series {
        key: &key,
        values: &history.values,
        last_date: Some(history.last_date),
    };
    let mut forecast_failed = false;
    // The policy asks for the total over each possible lead time (and that plus the
    // review period): the forecaster may serve them all from one forecast.
    let longest = situation
        .lead_time
        .longest_days()
        .saturating_add(situation.review_days);
    let mut totals = f.total_demands(&s, longest as usize);
    let mut demand_over = |days: u32| totals(days as usize).inspect_err(|_| forecast_failed = true);
    let r = replenish::recommend(&situation, &mut demand_over).map_err(|e| {
        if forecast_failed {
            history_error(e, &series_label(&series), inline)
        } else {
            policy_error(e)
        }
    })?;
    let demand_quantiles: Vec<f64> = levels
        .iter()
        .map(|&p| r.protection_demand.quantile(p))
        .collect();
    let needs_approval = r.order_quantity > 0.0
        && settings
            .approval_order_value
            .zip(r.order_value)
            .is_some_and(|(limit, value)| value > limit);
    let outcome = if needs_approval {
        types::Outcome::NeedsApproval
    } else if r.order_quantity > 0.0 {
        types::Outcome::Order
    } else {
        types::Outcome::NoOrder
    };
    serving
        .metrics
        .recommendations
        .with_label_values(&[&loaded.name, &loaded.version_label, outcome_label(outcome)])
        .inc();
    loaded.metrics.rows.inc();
    Ok(types::RecommendResponse {
        model_name: loaded.name.clone(),
        model_version: loaded.version_label.clone(),
        series: Some(series),
        history_last_date: history.last_date.format("%Y-%m-%d").to_string(),
        outcome,
        protection_days: r.protection_days,
        demand_mean: r.protection_demand.mean(),
        demand_std: r.protection_demand.sd(),
        quantiles: levels,
        demand_quantiles,
        reorder_point: r.reorder_point,
        order_up_to: r.order_up_to,
        inventory_position: r.inventory_position,
        order_quantity: r.order_quantity,
        stockout_probability: r.stockout_probability,
        expected_units_short: r.expected_units_short,
        order_value: r.order_value,
        needs_approval,
    })
}

async fn recommend_on(
    serving: &Arc<Serving>,
    settings: RecommendSettings,
    loaded: Arc<LoadedModel>,
    req: types::RecommendRequest,
) -> Result<types::RecommendResponse, ServeError> {
    let f = forecaster_of(&loaded)?;
    let runs_long = f.runs_long();
    let checked = check(f, settings.limits, req)?;
    let history = match checked.inline.clone() {
        Some(h) => h,
        None => {
            let keys = store_keys(
                serving,
                &loaded,
                std::slice::from_ref(&checked.series),
                false,
            )?;
            read_histories(serving, &loaded, &keys)
                .await?
                .pop()
                .ok_or_else(|| ServeError::Internal("no history read".into()))??
        }
    };
    let work = Arc::clone(serving);
    serving
        .place(runs_long, move || {
            compute(&work, settings, &loaded, checked, history)
        })
        .await?
}

fn outcome_label(outcome: types::Outcome) -> &'static str {
    match outcome {
        types::Outcome::Order => "order",
        types::Outcome::NoOrder => "no_order",
        types::Outcome::NeedsApproval => "needs_approval",
    }
}
