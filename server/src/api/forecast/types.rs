//! Forecasting and replenishment in their own terms: requests, forecasts,
//! recommendations and the items of streamed batches. `grpc/forecasting.rs` and
//! `grpc/inventory.rs` convert them to and from protobuf.

use crate::error::ServeError;

/// A series: a SKU at a location (the location empty for SKU-keyed models).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesId {
    /// The SKU.
    pub sku_id: String,
    /// The location.
    pub location_id: String,
}

/// A history sent with the request instead of read from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentHistory {
    /// Daily values, oldest first.
    pub values: Vec<f64>,
    /// The date of the last value, `YYYY-MM-DD`.
    pub last_date: String,
}

/// `Forecasting/Forecast`.
#[derive(Debug, Clone, Default)]
pub struct ForecastRequest {
    /// The model; empty for the default.
    pub model_name: String,
    /// The version or alias; empty for the traffic split.
    pub model_version: String,
    /// The series.
    pub series: Option<SeriesId>,
    /// Days ahead.
    pub horizon_days: u32,
    /// Levels; empty for the defaults.
    pub quantiles: Vec<f64>,
    /// A history sent inline, else read from the store.
    pub history: Option<SentHistory>,
}

/// One forecast day.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastPoint {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The mean.
    pub mean: f64,
    /// One value per level.
    pub quantiles: Vec<f64>,
}

/// A series' forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// The series.
    pub series: Option<SeriesId>,
    /// One point a day from the day after the history.
    pub points: Vec<ForecastPoint>,
    /// The levels of the points' quantiles.
    pub quantiles: Vec<f64>,
    /// The last day of the history used.
    pub history_last_date: String,
}

/// `Forecasting/ForecastBatch`.
#[derive(Debug, Clone, Default)]
pub struct ForecastBatchRequest {
    /// The model; empty for the default.
    pub model_name: String,
    /// The version or alias; empty for the traffic split.
    pub model_version: String,
    /// The series, in the order answers keep.
    pub series: Vec<SeriesId>,
    /// Days ahead.
    pub horizon_days: u32,
    /// Levels; empty for the defaults.
    pub quantiles: Vec<f64>,
}

/// One series of a batch: its forecast, or why it has none (the batch goes on).
#[derive(Debug)]
pub struct SeriesForecast {
    /// The series.
    pub series: Option<SeriesId>,
    /// Why it has no forecast, if it has none.
    pub error: Option<ServeError>,
    /// The last day of its history.
    pub history_last_date: String,
    /// Its points.
    pub points: Vec<ForecastPoint>,
}

/// One streamed message of a batch: a chunk of series, in order.
#[derive(Debug)]
pub struct ForecastBatchResponse {
    /// The model.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// The levels.
    pub quantiles: Vec<f64>,
    /// The chunk's series.
    pub forecasts: Vec<SeriesForecast>,
}

/// Stock on its way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnOrder {
    /// Units.
    pub quantity: f64,
    /// `YYYY-MM-DD`.
    pub arrival_date: String,
}

/// One possible lead time and its probability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadTimeOutcome {
    /// Days.
    pub days: u32,
    /// Its probability.
    pub probability: f64,
}

/// What a recommendation aims for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServiceTarget {
    /// The probability of no stockout in a cycle.
    CycleServiceLevel(f64),
    /// The share of demand served from stock.
    FillRate(f64),
}

/// `Inventory/Recommend`.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    /// The model; empty for the default.
    pub model_name: String,
    /// The version or alias; empty for the traffic split.
    pub model_version: String,
    /// The series.
    pub series: Option<SeriesId>,
    /// Units on hand.
    pub on_hand: f64,
    /// Stock on its way.
    pub on_order: Vec<OnOrder>,
    /// The mean lead time, days.
    pub lead_time_days: f64,
    /// Its standard deviation, days.
    pub lead_time_std_days: f64,
    /// An empirical lead-time distribution instead of mean and deviation.
    pub lead_time_distribution: Vec<LeadTimeOutcome>,
    /// Days between reviews.
    pub review_period_days: u32,
    /// The service target.
    pub target: Option<ServiceTarget>,
    /// Orders are multiples of this.
    pub pack_size: Option<f64>,
    /// The smallest order.
    pub min_order_quantity: f64,
    /// For the order's value.
    pub unit_cost: Option<f64>,
    /// Levels of the protection demand to report; empty for the defaults.
    pub quantiles: Vec<f64>,
    /// A history sent inline, else read from the store.
    pub history: Option<SentHistory>,
    /// Units owed to customers.
    pub backordered: f64,
}

/// What a recommendation says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Order the quantity.
    Order,
    /// Order nothing.
    NoOrder,
    /// The order's value needs a person's approval.
    NeedsApproval,
}

/// A replenishment order and the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// The series.
    pub series: Option<SeriesId>,
    /// The last day of the history used.
    pub history_last_date: String,
    /// What to do.
    pub outcome: Outcome,
    /// Days the order must cover.
    pub protection_days: f64,
    /// Demand over them: mean.
    pub demand_mean: f64,
    /// And standard deviation.
    pub demand_std: f64,
    /// Levels of `demand_quantiles`.
    pub quantiles: Vec<f64>,
    /// Demand over the protection days at each level.
    pub demand_quantiles: Vec<f64>,
    /// Order when the position falls to this.
    pub reorder_point: f64,
    /// Order up to this.
    pub order_up_to: f64,
    /// On hand plus on order minus backordered.
    pub inventory_position: f64,
    /// Units to order.
    pub order_quantity: f64,
    /// The chance of a stockout before the next order arrives.
    pub stockout_probability: f64,
    /// Units short expected.
    pub expected_units_short: f64,
    /// The order's value, with a unit cost.
    pub order_value: Option<f64>,
    /// Whether it needs approval.
    pub needs_approval: bool,
}

/// `Inventory/RecommendBatch`.
#[derive(Debug, Clone, Default)]
pub struct RecommendBatchRequest {
    /// The model; empty for the default.
    pub model_name: String,
    /// The version or alias; empty for the traffic split.
    pub model_version: String,
    /// The items, in the order answers keep.
    pub items: Vec<RecommendRequest>,
}

/// One item of a batch: its recommendation, or why it has none (the batch goes on).
#[derive(Debug)]
pub struct ItemRecommendation {
    /// The item's index in the request.
    pub index: u32,
    /// Why it has none, if it has none.
    pub error: Option<ServeError>,
    /// Its recommendation.
    pub recommendation: Option<RecommendResponse>,
}

/// One streamed message of a batch: a chunk of items, in order.
#[derive(Debug)]
pub struct RecommendBatchResponse {
    /// The chunk's items.
    pub recommendations: Vec<ItemRecommendation>,
}
