//! Opening a database file: connection settings and migrations.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, MigrationDefinitionError, Migrations};

use crate::{SqliteConfig, SqliteError, Synchronous};
use collab_core::Error;

/// The schema, one numbered file per version. Never edit a released file: add the next one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_counters.sql"),
    include_str!("migrations/0003_email_match_key.sql"),
    include_str!("migrations/0004_outbox_by_channel.sql"),
    include_str!("migrations/0005_retention_and_erasure.sql"),
    include_str!("migrations/0006_outbox_order.sql"),
    include_str!("migrations/0007_outbox_parked.sql"),
    include_str!("migrations/0008_tenant_settings.sql"),
];

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Opens a connection with the settings every connection of the store shares.
pub(crate) fn connect(path: &Path, config: &SqliteConfig) -> Result<Connection, Error> {
    let not_a_database = |e: rusqlite::Error| -> Error {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                SqliteError::NotADatabase(path.display().to_string()).into()
            }
            _ => SqliteError::Sqlite(e).into(),
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(not_a_database)?;
    conn.busy_timeout(config.busy_timeout).map_err(not_a_database)?;
    // The first statement that reads the file finds out whether it is a database.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(not_a_database)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteError::Corrupt(format!("could not switch to WAL mode (got {mode})")).into());
    }
    let synchronous = match config.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    // secure_delete: a delivered invite's outbox row (which holds its link) is overwritten, not
    // just unlinked, when it is deleted.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
    ))
    .map_err(not_a_database)?;
    Ok(conn)
}

/// The writer's connection, with the schema brought up to date.
pub(crate) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection, Error> {
    let mut conn = connect(path, config)?;
    // Checkpoints run on their own thread, not inside commits.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
        .map_err(crate::sqlite)?;
    let migrations = migrations();
    migrations.to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead) => {
            let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap_or(0);
            SqliteError::NewerSchema {
                found,
                known: MIGRATIONS.len(),
            }
            .into()
        }
        rusqlite_migration::Error::RusqliteError { err, .. } if is_not_a_database(&err) => {
            SqliteError::NotADatabase(path.display().to_string()).into()
        }
        other => Error::from(SqliteError::Migration(other)),
    })?;
    Ok(conn)
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
