//! Definitions and rows shared by the online store tests.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "shared by test binaries, each using part of it"
)]

use mercator_features::online::PushRow;
use mercator_features::{Definitions, FeatureView, Value};

/// A customer view with a TTL and one without, and a SKU-location view without one.
pub const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[entities]]
name = "sku_location"
join_keys = ["sku_id", "location_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "1h"
fields = [
  { name = "orders_90d", type = "float32" },
  { name = "segment", type = "string" },
  { name = "vip", type = "bool" },
]

[[feature_views]]
name = "loyalty"
entity = "customer"
fields = [
  { name = "points", type = "int64" },
]

[[feature_views]]
name = "sales"
entity = "sku_location"
fields = [
  { name = "units", type = "float32_list" },
  { name = "price", type = "float64" },
  { name = "stock", type = "int64" },
]
"#;

/// A view of [`DEFS`].
pub fn view(name: &str) -> FeatureView {
    Definitions::from_toml(DEFS).expect("defs").views[name].clone()
}

/// A row of `activity`: orders and a segment derived from them.
pub fn row(id: &str, t: i64, orders: f32) -> PushRow {
    PushRow {
        key: vec![id.into()],
        event_time_micros: t,
        values: vec![
            ("orders_90d".into(), Some(Value::Float32(orders))),
            ("segment".into(), Some(Value::String(format!("s{orders}")))),
        ],
    }
}
