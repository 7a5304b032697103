//! Bringing the schema up to date: embedded migrations, one server at a time.

use collab_core::Error;
use refinery::Migration;
use refinery::error::Kind;
use tokio_postgres::NoTls;

use crate::{PostgresConfig, PostgresError, postgres};

/// The schema, one numbered file per version. Never edit a released file: add the next one.
const MIGRATIONS: &[(&str, &str)] = &[
    ("V1__init", include_str!("migrations/V1__init.sql")),
    (
        "V2__hot_room_updates",
        include_str!("migrations/V2__hot_room_updates.sql"),
    ),
    (
        "V3__email_match_key",
        include_str!("migrations/V3__email_match_key.sql"),
    ),
    (
        "V4__retention_and_erasure",
        include_str!("migrations/V4__retention_and_erasure.sql"),
    ),
    ("V5__outbox_order", include_str!("migrations/V5__outbox_order.sql")),
    ("V6__outbox_parked", include_str!("migrations/V6__outbox_parked.sql")),
    (
        "V7__tenant_settings",
        include_str!("migrations/V7__tenant_settings.sql"),
    ),
];

pub(crate) fn migrations() -> Result<Vec<Migration>, Error> {
    MIGRATIONS
        .iter()
        .map(|(name, sql)| Migration::unapplied(name, sql).map_err(|e| PostgresError::Migration(e).into()))
        .collect()
}

/// Connects once, on its own connection, and applies the migrations the database lacks. An
/// advisory lock makes servers that start together take turns, so that each migration runs once.
pub(crate) async fn migrate(config: &PostgresConfig) -> Result<(), Error> {
    let (mut client, connection) = config.connection().connect(NoTls).await.map_err(postgres)?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres migration connection ended");
        }
    });
    let result = async {
        if let Some(schema) = &config.schema {
            // The name was checked by `with_schema`: letters, digits and `_` only.
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(postgres)?;
        }
        let lock = format!("collab-migrations:{}", config.schema.as_deref().unwrap_or(""));
        client
            .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&lock])
            .await
            .map_err(postgres)?;
        let report = refinery::Runner::new(&migrations()?)
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run_async(&mut client)
            .await;
        // Released with the session too; unlocking here lets the next server go at once.
        let unlocked = client
            .execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&lock])
            .await;
        report.map_err(|e| match e.kind() {
            Kind::MissingVersion(migration) => PostgresError::NewerSchema {
                found: migration.to_string(),
                known: MIGRATIONS.len(),
            }
            .into(),
            _ => Error::from(PostgresError::Migration(e)),
        })?;
        unlocked.map_err(postgres)?;
        Ok(())
    }
    .await;
    drop(client);
    let _ = connection.await;
    result
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    #[test]
    fn migrations_are_named_and_numbered() {
        let migrations = super::migrations().expect("valid names");
        for (i, migration) in migrations.iter().enumerate() {
            assert_eq!(i64::from(migration.version()), i as i64 + 1);
        }
    }
}
