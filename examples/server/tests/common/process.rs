//! The real `collab-server` binary as a child process: started with a clean environment, waited
//! for until it listens (with a deadline), killed when dropped; its output kept and, when a test
//! fails, its last lines printed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Http;

/// How long a server may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The line the server prints once it listens, before its URL.
const LISTENING: &str = "collab example server on ";

/// A child process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `collab-server`.
#[derive(Debug)]
pub struct ServerProcess {
    child: KillOnDrop,
    /// Its data directory unless the test gives one: never the shared default, `collab-data` in
    /// the working directory, whose counters would carry over from run to run.
    _data: tempfile::TempDir,
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub base: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `collab-server` on a free loopback port, with no environment but `RUST_LOG=warn`
    /// and a data directory of its own; `configure` adds flags and variables (a later `--addr`
    /// picks the port, a later `--data` the directory). Returns once it listens; panics with its
    /// output if it exits or takes longer than 30 s.
    pub fn start(configure: impl FnOnce(&mut Command)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_collab-server"));
        command
            .env_clear()
            .env("RUST_LOG", "warn")
            .args(["--addr", "127.0.0.1:0"])
            .arg("--data")
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = KillOnDrop(command.spawn().unwrap());
        let output = Arc::new(Mutex::new(Vec::new()));
        let (listening, base) = mpsc::channel();
        // Both pipes are drained for the process's life: a server writing to a full pipe stalls.
        collect(child.0.stdout.take().unwrap(), output.clone(), Some(listening));
        collect(child.0.stderr.take().unwrap(), output.clone(), None);
        let started = Instant::now();
        let base = loop {
            match base.recv_timeout(Duration::from_millis(100)) {
                Ok(base) => break base,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{}", failed("exited", &output)),
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("{}", failed(&format!("exited with {status}"), &output));
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "{}",
                failed("never listened", &output)
            );
        };
        Self {
            child,
            _data: data,
            base,
            output,
        }
    }

    /// A client of this server.
    pub fn http(&self) -> Http {
        Http::new(&self.base)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The rest of the first line it printed that starts with `prefix` (after trimming), waiting
    /// up to 10 s for it.
    pub fn printed(&self, prefix: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_owned));
            if let Some(rest) = found {
                return rest;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{}",
                failed(&format!("never printed {prefix:?}"), &self.output)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL, as a crash would, and waits until it is gone.
    pub fn kill(mut self) {
        self.child.0.kill().unwrap();
        self.child.0.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", failed("was running when the test failed", &self.output));
        }
    }
}

/// Reads `pipe` line by line into `output`; the first line naming the URL goes to `listening`.
fn collect(pipe: impl Read + Send + 'static, output: Arc<Mutex<Vec<String>>>, listening: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        let mut listening = listening;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix(LISTENING)
                && let Some(listening) = listening.take()
            {
                let _ = listening.send(url.trim().to_owned());
            }
            output.lock().unwrap().push(line);
        }
    });
}

/// What a failed server said last.
fn failed(what: &str, output: &Mutex<Vec<String>>) -> String {
    let output = output.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tail = output[output.len().saturating_sub(40)..].join("\n  ");
    format!("collab-server {what}; its last lines:\n  {tail}")
}
