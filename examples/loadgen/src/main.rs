//! `collab-loadgen`: load on a running example server; see `--help`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use collab_loadgen::{Config, Report};

const HELP: &str = "\
collab-loadgen: live customers and agents on the example server, posts at a fixed rate, and a
check that every listener saw every event of its room exactly once and in order

Flags:
  --server URL         the server, on loopback (default http://127.0.0.1:8080)
  --agents LIST        agents as id:password,id:password (or COLLAB_AGENTS, as for the server);
                       room i belongs to agent i mod their number (default
                       agent@example.com:dev, the server's dev agent)
  --rooms N            rooms (default 100)
  --customers N        customers per room, each with a live stream (default 10); each room's
                       agent has a stream too
  --rate R             posts per second, all rooms together (default 100)
  --warmup S           seconds of posting before the measurement (default 10)
  --duration S         seconds of posting measured (default 60)
  --server-pid PID     the server's process, for its memory and CPU time from /proc
  --sample-every S     seconds between memory samples (default 5)
  --csv PATH           write the samples there: elapsed_s,server_rss_kib,server_cpu_s,loadgen_cpu_s,acked
  --max-p99-ms MS      fail when the 99th percentile latency is above this (default 100)
  --max-rss-growth PCT fail when the server's RSS grows more than PCT% after the warm-up
  --quiet              no progress lines

Prints one summary line (result=PASS or result=FAIL, then key=value figures) and exits 0 when
every check held, 1 when one failed, 2 when the run could not be set up.
";

struct Args {
    config: Config,
    csv: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut config = Config {
        progress: true,
        ..Config::default()
    };
    if let Ok(list) = std::env::var("COLLAB_AGENTS") {
        config.agents = agents(&list)?;
    }
    let mut csv = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: {text:?} is not a number"))
        };
        let count = |text: String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag}: {text:?} is not a count"))
        };
        let seconds = |text: String| number(text).map(Duration::from_secs_f64);
        match flag.as_str() {
            "--server" => config.server = value()?,
            "--agents" => config.agents = agents(&value()?)?,
            "--rooms" => config.rooms = count(value()?)?,
            "--customers" => config.customers_per_room = count(value()?)?,
            "--rate" => config.rate = number(value()?)?,
            "--warmup" => config.warmup = seconds(value()?)?,
            "--duration" => config.duration = seconds(value()?)?,
            "--server-pid" => {
                let pid = value()?;
                config.server_pid = Some(pid.parse().map_err(|_| format!("--server-pid: {pid:?} is not a pid"))?);
            }
            "--sample-every" => config.sample_every = seconds(value()?)?,
            "--csv" => csv = Some(value()?),
            "--max-p99-ms" => config.max_p99 = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--max-rss-growth" => config.max_rss_growth = Some(number(value()?)? / 100.0),
            "--quiet" => config.progress = false,
            "-h" | "--help" => return Err(HELP.to_owned()),
            other => return Err(format!("unknown flag {other}\n\n{HELP}")),
        }
    }
    Ok(Args { config, csv })
}

/// `id:password,id:password`, as the server's `--agents`.
fn agents(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            entry
                .split_once(':')
                .map(|(id, password)| (id.trim().to_owned(), password.to_owned()))
                .ok_or_else(|| "agents: an entry is not id:password".to_owned())
        })
        .collect()
}

fn write_csv(path: &str, report: &Report) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "elapsed_s,server_rss_kib,server_cpu_s,loadgen_cpu_s,acked")?;
    let seconds = |d: Option<Duration>| d.map_or(String::new(), |d| format!("{:.2}", d.as_secs_f64()));
    for s in &report.samples {
        let rss = s.server_rss_kib.map_or(String::new(), |kib| kib.to_string());
        writeln!(
            out,
            "{:.1},{rss},{},{},{}",
            s.elapsed.as_secs_f64(),
            seconds(s.server_cpu),
            seconds(s.loadgen_cpu),
            s.acked
        )?;
    }
    out.flush()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let report = match collab_loadgen::run(&args.config).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("set-up failed: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.csv
        && let Err(e) = write_csv(path, &report)
    {
        eprintln!("cannot write {path}: {e}");
    }
    println!("{report}");
    for failure in &report.failures {
        eprintln!("failed: {failure}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
