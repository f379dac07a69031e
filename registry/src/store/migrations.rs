//! The schema's migrations, embedded at build time (`build.rs`) and run by sqlx's
//! migrator: each backend's list in version order, as `(version, description, sql)`.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Backend;

const SQLITE: &[(i64, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));
const POSTGRES: &[(i64, &str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/migrations_postgres.rs"));

/// A backend's embedded migrations, as a source sqlx's migrator reads.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    // What sqlx's own resolver gives a file: the checksum is the SQL's,
                    // and a first line `-- no-transaction` runs it outside one.
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        sql.starts_with("-- no-transaction"),
                    )
                })
                .collect())
        })
    }
}

/// The migrator of `backend`'s schema.
pub(crate) async fn migrator(backend: Backend) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (backend, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend);
            let files = std::fs::read_dir(dir).expect("dir").count();
            assert_eq!(list.len(), files, "{backend}");
            assert!(
                list.windows(2).all(|w| w[0].0 < w[1].0),
                "{backend}: in order"
            );
            assert_eq!(
                list[1].1, "feature definitions",
                "{backend}: sqlx's description"
            );
        }
    }
}
