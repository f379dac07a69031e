//! Traffic splits: a model's routes, stored whole.

use sqlx::{AnyConnection, Row};

use crate::model::TrafficRoute;
use crate::{RegistryError, Result};

/// A model's traffic routes: live ones first, then shadows, each by alias.
pub(crate) async fn traffic_of(
    conn: &mut AnyConnection,
    model_id: i64,
) -> Result<Vec<TrafficRoute>> {
    sqlx::query(
        "SELECT alias, percent, shadow FROM traffic_routes WHERE model_id = $1 ORDER BY shadow, alias",
    )
    .bind(model_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(TrafficRoute {
            alias: r.try_get("alias")?,
            percent: u32::try_from(r.try_get::<i64, _>("percent")?).map_err(|_| {
                RegistryError::Integrity("a traffic percent out of range in the database".into())
            })?,
            shadow: r.try_get::<i64, _>("shadow")? != 0,
        })
    })
    .collect()
}

/// Replaces a model's traffic routes.
pub(crate) async fn replace_traffic(
    conn: &mut AnyConnection,
    model_id: i64,
    routes: &[TrafficRoute],
) -> Result<()> {
    sqlx::query("DELETE FROM traffic_routes WHERE model_id = $1")
        .bind(model_id)
        .execute(&mut *conn)
        .await?;
    for r in routes {
        sqlx::query(
            "INSERT INTO traffic_routes (model_id, alias, percent, shadow) VALUES ($1, $2, $3, $4)",
        )
        .bind(model_id)
        .bind(&r.alias)
        .bind(i64::from(r.percent))
        .bind(i64::from(r.shadow))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
