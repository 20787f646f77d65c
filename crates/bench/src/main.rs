//! `mftgw-bench`: starts the gateway and its peers (vsftpd, ProFTPD), drives each with the
//! same load generator, and writes `BENCHMARKS.md` with `results.json` and `ratios.svg`.
//! Every figure comes from one run; the report puts each target next to the measured ratio.

mod emcs;
mod load;
mod machine;
mod report;
mod servers;
mod stores;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::{Parser, Subcommand};

use load::Target;
use report::{Goal, Report, ReportFiles, Row};
use servers::{PeerSetup, Server};

#[derive(Parser)]
#[command(about = "Benchmarks the gateway side by side with vsftpd and ProFTPD")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every scenario on every server and writes the report.
    Run(RunArgs),
    /// Measures signed and encrypted EMCS calls, the gateway beside a WSS4J echo, and
    /// writes them into the report.
    Emcs(emcs::EmcsArgs),
    /// Measures the gateway's small-file, parallel and status-latency scenarios on the
    /// embedded stores and on PostgreSQL + S3 with one and three nodes behind HAProxy, and
    /// writes them into the report.
    Stores(stores::StoresArgs),
    /// Writes the report again from an earlier run's `results.json` (after editing the
    /// hand-written `analysis.md` beside it).
    Render(ReportFiles),
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    files: ReportFiles,
    /// Small sizes, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Which servers to measure.
    #[arg(long, value_delimiter = ',', default_value = "gateway,vsftpd,proftpd")]
    targets: Vec<String>,
    /// How many times each throughput scenario runs on each server, the servers taking
    /// turns (gateway, vsftpd, ProFTPD, gateway, …), each time freshly started.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repetitions: u32,
    /// Where the peers' packages and test PKI are kept between runs.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// A configuration override for the gateway, `MFTGW__SECTION__KEY=value` (repeatable),
    /// for experiments.
    #[arg(long = "gateway-env", value_parser = parse_env)]
    gateway_env: Vec<(String, String)>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The scenarios' sizes (the issue's, or a quick fraction).
struct Sizes {
    bulk_bytes: u64,
    small_files: usize,
    parallel_sessions: usize,
    parallel_files: usize,
    login_workers: usize,
    logins_each: usize,
    list_entries: usize,
    idle_gateway: usize,
    idle_peers: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                bulk_bytes: 64 << 20,
                small_files: 200,
                parallel_sessions: 10,
                parallel_files: 5,
                login_workers: 10,
                logins_each: 2,
                list_entries: 1_000,
                idle_gateway: 500,
                idle_peers: 100,
            }
        } else {
            Sizes {
                bulk_bytes: 1 << 30,
                small_files: 2_000,
                parallel_sessions: 50,
                parallel_files: 20,
                login_workers: 50,
                logins_each: 5,
                list_entries: 10_000,
                idle_gateway: 10_000,
                // A process per session: 10,000 would take tens of GiB on this machine.
                idle_peers: 1_000,
            }
        }
    }
}

/// The gateway's passive ports and the peers', disjoint.
const GATEWAY_PASSIVE: &str = "40000-40999";
const VSFTPD_PASSIVE: (u16, u16) = (41000, 41999);
const PROFTPD_PASSIVE: (u16, u16) = (43000, 43999);

fn main() -> anyhow::Result<()> {
    let args = match Cli::parse().command {
        Command::Run(args) => args,
        Command::Render(files) => {
            return Report::read(&files.out)?.write(&files.out, &files.markdown);
        }
        Command::Emcs(args) => {
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(emcs::run(args));
        }
        Command::Stores(args) => {
            machine::raise_open_file_limit();
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(stores::run(args));
        }
    };
    let files = machine::raise_open_file_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // Interrupted, the run is dropped, and with it every server it started.
            tokio::select! {
                result = run(args, files) => result,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; the servers are stopped"),
            }
        })
}

async fn run(args: RunArgs, open_files: u64) -> anyhow::Result<()> {
    let sizes = Sizes::new(args.quick);
    ensure!(
        open_files as usize > sizes.idle_gateway + 1_000,
        "the open-file limit is {open_files}; the idle scenario needs more (ulimit -Hn)"
    );
    let mut machine = machine::Machine::read();
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut rows = Rows::default();
    let peers = if args.targets.iter().any(|t| t != "gateway") {
        let cache = args.cache.clone().unwrap_or_else(default_cache);
        Some(PeerSetup::prepare(&cache).context("setting up the peers (run as root)")?)
    } else {
        None
    };
    let start = |name: &str| -> anyhow::Result<Server> {
        match name {
            "gateway" => servers::gateway(GATEWAY_PASSIVE, &args.gateway_env),
            "vsftpd" => peers
                .as_ref()
                .context("no peer setup")?
                .vsftpd(VSFTPD_PASSIVE),
            "proftpd" => peers
                .as_ref()
                .context("no peer setup")?
                .proftpd(PROFTPD_PASSIVE),
            other => anyhow::bail!("unknown target {other} (gateway, vsftpd, proftpd)"),
        }
    };
    // The throughput scenarios in turns, so that the machine's moods reach every server
    // alike: a ratio compares values measured moments apart.
    for repetition in 1..=args.repetitions {
        for name in &args.targets {
            eprintln!("== {name} ({repetition} of {})", args.repetitions);
            let server = start(name)?;
            let run = format!("{run_id}-{repetition}");
            measure(&server.target, &sizes, &run, &mut rows).await?;
        }
    }
    for name in &args.targets {
        eprintln!("== {name}: idle sessions and listings");
        let server = start(name)?;
        let idle = if name == "gateway" {
            sizes.idle_gateway
        } else {
            sizes.idle_peers
        };
        eprintln!("   idle: {idle} sessions");
        let per_session = load::idle(&server.target, idle).await?;
        rows.put(
            "idle session",
            "KiB/session",
            false,
            name,
            per_session / 1024.0,
        );
        drop(server);
        // Listing on a server holding just the listed files.
        let server = start(name)?;
        let (list, mlsd) = list_scenario(&server, &sizes, run_id).await?;
        rows.put("LIST of the directory", "s", false, name, list);
        if let Some(mlsd) = mlsd {
            rows.put("MLSD of the directory", "s", false, name, mlsd);
        }
    }
    for listing in ["LIST of the directory", "MLSD of the directory"] {
        rows.note(
            listing,
            &format!("the median of {} listings in one session", load::LISTINGS),
        );
    }
    machine.loadavg_end = machine::loadavg();
    let mut parameters = BTreeMap::new();
    parameters.insert(
        "repetitions".into(),
        format!(
            "{} of bulk, small, parallel and logins per server, in turns; idle and list once",
            args.repetitions
        ),
    );
    parameters.insert("bulk".into(), format!("{} MiB", sizes.bulk_bytes >> 20));
    parameters.insert("small".into(), format!("{} × 2 KiB", sizes.small_files));
    parameters.insert(
        "parallel".into(),
        format!(
            "{} sessions × {} × 2 KiB",
            sizes.parallel_sessions, sizes.parallel_files
        ),
    );
    parameters.insert(
        "logins".into(),
        format!("{} workers × {}", sizes.login_workers, sizes.logins_each),
    );
    parameters.insert("list".into(), format!("{} entries", sizes.list_entries));
    parameters.insert(
        "idle".into(),
        format!(
            "{} sessions on the gateway, {} on each peer",
            sizes.idle_gateway, sizes.idle_peers
        ),
    );
    let report = Report {
        rows: rows.finish(&machine),
        machine,
        parameters,
    };
    report.write(&args.files.out, &args.files.markdown)?;
    eprintln!(
        "wrote {} and {}",
        args.files.markdown.display(),
        args.files.out.display()
    );
    Ok(())
}

fn default_cache() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".cache/mftgw-bench")
}

/// The heartbeat's status_3 for an upload named `name`, where `SIZE` finds it.
fn heartbeat_status_3(name: &str) -> String {
    format!("/out/status_FTPSGW.Heartbeat_{name}_3.xml")
}

async fn measure(
    target: &Target,
    sizes: &Sizes,
    run_id: &str,
    rows: &mut Rows,
) -> anyhow::Result<()> {
    let name = target.name.as_str();
    eprintln!("   bulk: {} MiB", sizes.bulk_bytes >> 20);
    let bulk = load::bulk(target, &format!("bulk-{run_id}.bin"), sizes.bulk_bytes).await?;
    rows.put("bulk upload", "MB/s", true, name, bulk);

    eprintln!("   small: {} files", sizes.small_files);
    let small = load::small(target, &format!("small-{run_id}"), sizes.small_files).await?;
    rows.put("small files, one session", "files/s", true, name, small);

    eprintln!(
        "   parallel: {} × {}",
        sizes.parallel_sessions, sizes.parallel_files
    );
    let status_of = (name == "gateway").then_some(heartbeat_status_3 as fn(&str) -> String);
    let parallel = load::parallel(
        target,
        &format!("par-{run_id}"),
        sizes.parallel_sessions,
        sizes.parallel_files,
        status_of,
    )
    .await?;
    rows.put(
        "parallel sessions",
        "files/s",
        true,
        name,
        parallel.files_per_sec,
    );
    rows.put("parallel: per-file p50", "ms", false, name, parallel.p50_ms);
    rows.put("parallel: per-file p99", "ms", false, name, parallel.p99_ms);
    if let Some(latency) = parallel.status_latency {
        rows.put("status_3 latency p50", "ms", false, name, latency.p50_ms);
        rows.put("status_3 latency p99", "ms", false, name, latency.p99_ms);
        rows.note(
            "status_3 latency p99",
            &format!(
                "from each upload's `226` to its heartbeat status_3 answering `SIZE` in `/out`, for all {} uploads of the parallel scenario, watched by 4 extra sessions that look for each name 1 ms after its `226`, then at doubling intervals up to 10 ms (so a latency is overstated by less than 10 ms)",
                latency.samples
            ),
        );
    }

    eprintln!("   logins: {} × {}", sizes.login_workers, sizes.logins_each);
    let logins = load::logins(target, sizes.login_workers, sizes.logins_each).await?;
    rows.put("full logins", "logins/s", true, name, logins);
    Ok(())
}

/// Fills the listed directory with `list_entries` entries and times `LIST` and `MLSD` of it:
/// the gateway's `/out` through heartbeat uploads (four files each), a peer's directory on
/// its disk.
async fn list_scenario(
    server: &Server,
    sizes: &Sizes,
    run_id: u64,
) -> anyhow::Result<(f64, Option<f64>)> {
    let target = &server.target;
    eprintln!("   list: {} entries", sizes.list_entries);
    let dir = match &server.list_root {
        Some(root) => {
            for i in 0..sizes.list_entries {
                std::fs::write(root.join(format!("listed-{run_id}-{i:05}.xml")), b"<x/>\n")?;
            }
            std::process::Command::new("chown")
                .args(["-R", "ftpbench:ftpbench"])
                .arg(root)
                .status()?;
            "/list".to_string()
        }
        None => {
            let uploads = sizes.list_entries / 4;
            let sessions = 10;
            load::parallel(
                target,
                &format!("list-{run_id}"),
                sessions,
                uploads / sessions,
                None,
            )
            .await?;
            wait_for_out(target, sizes.list_entries).await?;
            "/out".to_string()
        }
    };
    load::list(target, &dir, sizes.list_entries).await
}

/// Waits until the gateway's `/out` holds `entries` files (the heartbeat answers apace).
async fn wait_for_out(target: &Target, entries: usize) -> anyhow::Result<()> {
    let mut client = target.login().await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let names = load::fetch(&mut client, "NLST /out").await?;
        let count = names
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        if count >= entries {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "/out holds {count} of {entries} files after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The report's rows in the order they were first measured.
#[derive(Default)]
struct Rows(Vec<Row>);

impl Rows {
    fn put(
        &mut self,
        scenario: &str,
        unit: &str,
        higher_is_better: bool,
        server: &str,
        value: f64,
    ) {
        let index = match self.0.iter().position(|row| row.scenario == scenario) {
            Some(index) => index,
            None => {
                self.0.push(Row::new(scenario, unit, higher_is_better));
                self.0.len() - 1
            }
        };
        self.0[index]
            .samples
            .entry(server.to_string())
            .or_default()
            .push(value);
    }

    fn note(&mut self, scenario: &str, note: &str) {
        if let Some(row) = self.0.iter_mut().find(|row| row.scenario == scenario) {
            row.note = note.to_string();
        }
    }

    /// The rows, each server's value the median of its samples, with the targets attached
    /// (the performance issue's: against the better peer of this run, and no regression on
    /// logins, listings and idle memory from the report before it).
    fn finish(mut self, machine: &machine::Machine) -> Vec<Row> {
        for row in &mut self.0 {
            row.values = row
                .samples
                .iter()
                .filter_map(|(server, samples)| Some((server.clone(), report::median(samples)?)))
                .collect();
            let best = |ratio: f64| {
                row.best_peer().map(|peer| Goal::Ratio {
                    peer: peer.into(),
                    ratio,
                })
            };
            let vsftpd = |ratio: f64| {
                Some(Goal::Ratio {
                    peer: "vsftpd".into(),
                    ratio,
                })
            };
            row.goal = match row.scenario.as_str() {
                "bulk upload" => best(1.5),
                "small files, one session" => best(1.0),
                "parallel sessions" => best(1.0),
                "parallel: per-file p99" => best(1.0),
                "full logins" => vsftpd(4.9),
                "LIST of the directory" => vsftpd(0.44),
                "idle session" => Some(Goal::AtMost(25.2)),
                "status_3 latency p99" => Some(Goal::AtMost(50.0)),
                _ => None,
            };
        }
        if let Some(aes) = machine.aes_128_gcm_mb_per_sec {
            let mut row = Row::new("bulk upload vs one core's AES-128-GCM", "MB/s", true);
            if let Some(bulk) = self
                .0
                .iter()
                .find(|row| row.scenario == "bulk upload")
                .and_then(|row| row.values.get("gateway"))
            {
                row.values.insert("gateway".into(), *bulk);
            }
            row.goal = Some(Goal::AtLeast(aes / 3.0));
            row.note = format!(
                "at least a third of one core's AES-128-GCM ({aes:.0} MB/s), with SHA-256 and fsync paid"
            );
            self.0.push(row);
        }
        self.0
    }
}
