//! Test helpers: a throw-away schema per test on the machine's PostgreSQL, and a private
//! PostgreSQL server a test may stop and start. **Not a stable API.**
//!
//! The database is `postgres://postgres@127.0.0.1:5432/test` unless `COLLAB_TEST_DATABASE_URL`
//! names another. When it is unreachable, [`TestSchema::create`] prints a loud `SKIPPED` line to
//! stderr and returns `None`, so that the test can return; with `CI=true` it panics instead, so
//! that a CI run never passes without the database.

// Test helpers report a broken fixture by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::fmt;
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::NoTls;

use crate::{PostgresConfig, PostgresRoomStore, PostgresTransport};

/// The one statement in which the store writes a group of appends that only add events to
/// existing rooms (one append per room): the rooms locked in id order, each checked against its
/// expected seq, updated, its events inserted, and the wake-ups sent. For benchmarks that
/// measure the store against this statement run raw. Its parameters, each an array with one
/// element per room unless said: `$1` the notification channel (a text; empty: no NOTIFY), `$2`
/// to `$15` the rooms' columns (room, tenant, agent, status, seq, created_at, last_activity,
/// first_lc, last_lc, full_lc, phone, email, summary, ended_at), `$16` the expected seqs, `$17`
/// the wake-ups (`room:seq`), and `$18` to `$20` the events' room, seq and data, one element per
/// event.
pub const PLAIN_APPEND_STATEMENT: &str = crate::write::WRITE_PLAIN;

/// The variable that names the test database.
pub const DATABASE_URL_VAR: &str = "COLLAB_TEST_DATABASE_URL";

/// The test database when [`DATABASE_URL_VAR`] is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL.
pub fn database_url() -> String {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

/// Whether this is a CI run (`CI=true`), where a missing database fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Reports that `test` cannot run because `what` is missing: a loud line on stderr, or a panic
/// under CI.
pub fn skip(test: &str, what: &str) {
    if in_ci() {
        panic!("{test}: {what} (CI=true: a missing database fails the run)");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {what} ***\n");
}

/// A fresh schema on the test database; dropped, with everything in it, when this is dropped.
pub struct TestSchema {
    url: String,
    name: String,
    config: PostgresConfig,
}

impl fmt::Debug for TestSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSchema").field("name", &self.name).finish()
    }
}

impl TestSchema {
    /// A new schema for `test` on the test database, or `None` (after [`skip`]) when the
    /// database is unreachable.
    pub async fn create(test: &str) -> Option<Self> {
        Self::create_on(test, &database_url()).await
    }

    /// A new schema for `test` on the database at `url`, or `None` (after [`skip`]).
    pub async fn create_on(test: &str, url: &str) -> Option<Self> {
        let client = match connect(url).await {
            Ok(client) => client,
            Err(e) => {
                let at = describe(url);
                skip(
                    test,
                    &format!("PostgreSQL at {at} is unreachable ({e}); set {DATABASE_URL_VAR}"),
                );
                return None;
            }
        };
        let name = format!("collab_test_{:016x}", random_u64());
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test schema");
        // The schema's name in every connection's application name, so that Drop can end them.
        let separator = if url.contains('?') { '&' } else { '?' };
        let config = PostgresConfig::new(&format!("{url}{separator}application_name={name}"))
            .and_then(|c| c.with_schema(&name))
            .and_then(|c| c.with_pool_size(4))
            .expect("test database config");
        Some(Self {
            url: url.to_owned(),
            name,
            config,
        })
    }

    /// The settings of a store or transport in this schema.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL (the schema is set with [`PostgresConfig::with_schema`], not in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store in this schema (migrated).
    pub async fn store(&self) -> PostgresRoomStore {
        PostgresRoomStore::connect(&self.config)
            .await
            .expect("connect the store")
    }

    /// A transport listening on this schema's channel.
    pub async fn transport(&self) -> PostgresTransport {
        PostgresTransport::connect(&self.config)
            .await
            .expect("connect the transport")
    }

    /// A plain connection with this schema on its search path, for checks in SQL.
    pub async fn client(&self) -> tokio_postgres::Client {
        let client = connect(&self.url).await.expect("connect");
        client
            .batch_execute(&format!("SET search_path = {0}; SET application_name = {0}", self.name))
            .await
            .expect("set the search path");
        client
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop may run inside a runtime that is shutting down: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = connect(&url).await?;
                // Connections of the test still open (an idle transaction would hold locks the
                // drop waits for) end first.
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE pid <> pg_backend_pid() AND strpos(application_name, $1) > 0",
                        &[&name],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// A store in a [`TestSchema`] of its own, for the conformance kit: the schema is dropped with
/// it.
#[derive(Debug)]
pub struct TestStore {
    store: PostgresRoomStore,
    schema: TestSchema,
}

impl TestStore {
    /// A store in a new schema, or `None` (after [`skip`]) when the database is unreachable.
    pub async fn create(test: &str) -> Option<Self> {
        let schema = TestSchema::create(test).await?;
        Some(Self {
            store: schema.store().await,
            schema,
        })
    }

    /// Its schema.
    pub fn schema(&self) -> &TestSchema {
        &self.schema
    }
}

impl Deref for TestStore {
    type Target = PostgresRoomStore;

    fn deref(&self) -> &PostgresRoomStore {
        &self.store
    }
}

/// Where `url` points, without its password.
fn describe(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
            format!(
                "{}:{}/{}",
                hosts.join(","),
                ports.join(","),
                config.get_dbname().unwrap_or_default()
            )
        }
        Err(_) => "an unreadable URL".to_owned(),
    }
}

/// A plain connection to `url`, its connection driven on a task of its own.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // Seeded randomly per process by the standard library; mixed with the time and a counter.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// A PostgreSQL server of its own, in a temp folder on a free port, that a test may stop (as a
/// crash would) and start again without disturbing anything else. Stopped and removed when
/// dropped.
#[derive(Debug)]
pub struct PrivateServer {
    cluster: Cluster,
}

/// Where a private server lives and how to run its programs.
#[derive(Clone, Debug)]
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Running the server's programs as the `postgres` user: PostgreSQL refuses to run as root.
    as_postgres: bool,
}

impl PrivateServer {
    /// Creates and starts the server, or returns `None` (after [`skip`]) when PostgreSQL's
    /// server programs (`initdb`, `pg_ctl`) are not installed.
    pub async fn start(test: &str) -> Option<Self> {
        let Some(bin) = server_programs() else {
            skip(test, "PostgreSQL's server programs (initdb, pg_ctl) are not installed");
            return None;
        };
        let test = test.to_owned();
        let cluster = tokio::task::spawn_blocking(move || {
            let as_postgres = run_text("id", &["-u"]).trim() == "0";
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = std::env::temp_dir().join(format!("collab-pg-{}-{:x}", std::process::id(), random_u64()));
            std::fs::create_dir_all(&dir).expect("server folder");
            let cluster = Cluster {
                bin,
                dir,
                port,
                as_postgres,
            };
            if as_postgres {
                run_text("chown", &["postgres:postgres", &cluster.dir.display().to_string()]);
            }
            let data = cluster.data().display().to_string();
            cluster.run(
                "initdb",
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
            );
            cluster.start();
            eprintln!("{test}: private PostgreSQL on port {}", cluster.port);
            cluster
        })
        .await
        .expect("start the private server");
        Some(Self { cluster })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.cluster.port)
    }

    /// Kills the server the way a crash would (`pg_ctl stop -m immediate`).
    pub async fn crash(&self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .expect("stop the private server");
    }

    /// Starts the server again on the same port and data.
    pub async fn start_again(&self) {
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start())
            .await
            .expect("start the private server");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.cluster.data().display().to_string();
        // Quietly: the server may be stopped already.
        let _ = self
            .cluster
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start(&self) {
        let data = self.data().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"],
        );
    }

    fn stop(&self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// One of the server's programs, as the `postgres` user when this process is root.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(path);
            runuser
        } else {
            Command::new(path)
        };
        command.args(args);
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The folder of PostgreSQL's server programs: the newest `/usr/lib/postgresql/*/bin` (Debian),
/// or the folder of an `initdb` on the `PATH`.
fn server_programs() -> Option<PathBuf> {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    debian.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    debian.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        })
    })
}

fn run_text(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
