//! `mercator recommend MODEL SKU LOCATION`: a replenishment order from a running server
//! (`Inventory/Recommend`), the forecaster reading the series' sales from its store.

use clap::Args;
use mercator_proto::v1::{self as pb, inventory_client::InventoryClient};

use super::call::{Target, failed};
use super::table;

/// `mercator recommend MODEL SKU LOCATION`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// The demand forecaster.
    pub model: String,
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location: String,
    /// Units in stock now.
    #[arg(long, default_value_t = 0.0)]
    pub on_hand: f64,
    /// Units owed to customers, not yet served from stock (backorders).
    #[arg(long, default_value_t = 0.0)]
    pub backordered: f64,
    /// An order on its way, as QUANTITY@YYYY-MM-DD (repeatable).
    #[arg(long, value_name = "QTY@DATE")]
    pub on_order: Vec<String>,
    /// The supplier's lead time in days.
    #[arg(long)]
    pub lead_time: f64,
    /// Its standard deviation in days.
    #[arg(long, default_value_t = 0.0)]
    pub lead_time_std: f64,
    /// Days until the next review.
    #[arg(long, default_value_t = 0)]
    pub review: u32,
    /// Target cycle service level, in (0, 1).
    #[arg(long, conflicts_with = "fill_rate")]
    pub service_level: Option<f64>,
    /// Target fill rate, in (0, 1).
    #[arg(long)]
    pub fill_rate: Option<f64>,
    /// Units per pack.
    #[arg(long)]
    pub pack: Option<f64>,
    /// Minimum order quantity, in units.
    #[arg(long, default_value_t = 0.0)]
    pub moq: f64,
    /// Cost per unit.
    #[arg(long)]
    pub unit_cost: Option<f64>,
    /// Where to call.
    #[command(flatten)]
    pub target: Target,
}

/// Runs `mercator recommend`.
pub async fn recommend(args: RecommendArgs) -> anyhow::Result<()> {
    let t = &args.target;
    let target = match (args.service_level, args.fill_rate) {
        (_, Some(b)) => pb::recommend_request::Target::FillRate(b),
        (Some(a), None) => pb::recommend_request::Target::CycleServiceLevel(a),
        (None, None) => anyhow::bail!("give --service-level or --fill-rate"),
    };
    let on_order = args
        .on_order
        .iter()
        .map(|o| {
            let (q, date) = o
                .split_once('@')
                .ok_or_else(|| anyhow::anyhow!("--on-order '{o}' is not QUANTITY@YYYY-MM-DD"))?;
            Ok(pb::OnOrder {
                quantity: q
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--on-order '{o}': '{q}' is not a number"))?,
                arrival_date: date.trim().to_string(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let r = InventoryClient::new(t.channel().await?)
        .recommend(pb::RecommendRequest {
            model_name: args.model.clone(),
            model_version: t.version.clone(),
            series: Some(pb::SeriesId {
                sku_id: args.sku.clone(),
                location_id: args.location.clone(),
            }),
            on_hand: args.on_hand,
            backordered: args.backordered,
            on_order,
            lead_time_days: args.lead_time,
            lead_time_std_days: args.lead_time_std,
            review_period_days: args.review,
            target: Some(target),
            pack_size: args.pack,
            min_order_quantity: args.moq,
            unit_cost: args.unit_cost,
            ..Default::default()
        })
        .await
        .map_err(failed)?
        .into_inner();
    if t.json {
        let out = serde_json::json!({
            "model": r.model_name, "model_version": r.model_version,
            "history_last_date": r.history_last_date,
            "outcome": r.outcome().as_str_name(),
            "order_quantity": r.order_quantity, "order_value": r.order_value,
            "needs_approval": r.needs_approval,
            "reorder_point": r.reorder_point, "order_up_to": r.order_up_to,
            "inventory_position": r.inventory_position,
            "protection_days": r.protection_days,
            "demand_mean": r.demand_mean, "demand_std": r.demand_std,
            "quantiles": r.quantiles, "demand_quantiles": r.demand_quantiles,
            "stockout_probability": r.stockout_probability,
            "expected_units_short": r.expected_units_short,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}@{}: {} at {}, history to {}",
        r.model_name, r.model_version, args.sku, args.location, r.history_last_date
    );
    let quantiles = r
        .quantiles
        .iter()
        .zip(&r.demand_quantiles)
        .map(|(q, v)| format!("q{q} {v:.1}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = vec![
        vec![
            format!("demand over {:.1} days", r.protection_days),
            format!(
                "mean {:.1}, sd {:.1}; {quantiles}",
                r.demand_mean, r.demand_std
            ),
        ],
        vec!["reorder point".into(), format!("{:.1}", r.reorder_point)],
        vec!["order-up-to level".into(), format!("{:.1}", r.order_up_to)],
        vec![
            "inventory position".into(),
            format!("{:.1}", r.inventory_position),
        ],
        vec![
            "order".into(),
            format!("{} ({})", r.order_quantity, r.outcome().as_str_name()),
        ],
        vec![
            "after the order".into(),
            format!(
                "P(stock-out) {:.3}, {:.2} units short expected",
                r.stockout_probability, r.expected_units_short
            ),
        ],
    ];
    table::print(&["", "VALUE"], &rows);
    Ok(())
}
