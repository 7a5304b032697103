//! A Python client generated from `/api/openapi.json` by `openapi-python-client` (pinned),
//! against the real server: the generator must take every operation, and the generated
//! functions and models must meet each case of the contract (`generated_client.py`).
//!
//! It installs the generator with pip into a venv under `~/.cache` when missing (Python 3.10 or
//! later, about 12 s once), as `schemathesis.sh` installs schemathesis; without Python it fails
//! and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::process::ServerProcess;

const GENERATOR_VERSION: &str = "0.29.1";

/// Runs `command` to the end; panics with its output unless it succeeded.
fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The venv holding the pinned generator, installed when missing.
fn generator_venv() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = Path::new(&home).join(format!(".cache/collab-openapi-python-client-{GENERATOR_VERSION}"));
    if !venv.join("bin/openapi-python-client").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("openapi-python-client=={GENERATOR_VERSION}"),
        ]));
    }
    venv
}

#[tokio::test]
async fn a_generated_python_client_meets_the_contract() {
    let venv = generator_venv();
    let server = ServerProcess::start(|command| {
        command.args(["--agents", "ada:secret"]);
    });
    let document = server.http().call("GET", "/api/openapi.json", None, None).await.body;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("openapi.json"), document).unwrap();
    // No formatter hooks: ruff is not needed to generate.
    std::fs::write(work.path().join("config.yml"), "post_hooks: []\n").unwrap();
    let generated = run(Command::new(venv.join("bin/openapi-python-client"))
        .current_dir(work.path())
        .args([
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            "collab_client",
            "--config",
            "config.yml",
        ]));
    // The generator skips, with a warning, any operation it cannot express (a query struct
    // once came out as path parameters, and three operations were left out).
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(!said.contains("WARNING") && !said.contains("Warning"), "{said}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated_client.py");
    let checked = run(Command::new(venv.join("bin/python"))
        .env("PYTHONPATH", work.path())
        .arg(script)
        .arg(&server.base));
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(said.contains("every case held"), "{said}");
}
