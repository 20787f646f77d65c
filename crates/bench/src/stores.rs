//! `mftgw-bench stores`: the gateway's small-file, parallel and status-latency scenarios on
//! each of its production set-ups, in one run: the embedded stores (SQLite and local files),
//! PostgreSQL and S3 (`s3s-fs`) with one node behind HAProxy, and with three. Writes
//! `stores.json` and `stores.md`, which BENCHMARKS.md includes.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use crate::{load, servers};

#[derive(clap::Args)]
pub struct StoresArgs {
    /// The PostgreSQL database the nodes share; each set-up gets a schema of its own.
    #[arg(
        long,
        env = "MFTGW_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database: String,
    /// Small sizes, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// `stores.json` and `stores.md` go to `--out` (BENCHMARKS.md includes `stores.md`).
    #[command(flatten)]
    files: crate::report::ReportFiles,
}

/// One set-up's figures.
#[derive(Debug, Serialize, Deserialize)]
pub struct Measured {
    pub setup: String,
    pub small_files_per_second: f64,
    pub parallel_files_per_second: f64,
    pub parallel_p50_ms: f64,
    pub parallel_p99_ms: f64,
    pub status_3_p50_ms: f64,
    pub status_3_p99_ms: f64,
}

/// What is measured: `None` nodes is the embedded demo.
const SETUPS: [(&str, Option<usize>); 3] = [
    ("SQLite + local files", None),
    ("PostgreSQL + S3, 1 node behind HAProxy", Some(1)),
    ("PostgreSQL + S3, 3 nodes behind HAProxy", Some(3)),
];

pub async fn run(args: StoresArgs) -> anyhow::Result<()> {
    let (small, sessions, per_session) = if args.quick {
        (100, 10, 5)
    } else {
        (2_000, 50, 20)
    };
    let run_id = std::process::id();
    let mut results = Vec::new();
    for (index, (setup, nodes)) in SETUPS.into_iter().enumerate() {
        eprintln!("== {setup}");
        let schema = format!("mftgw_bench_{run_id}_{index}");
        let (passive, demo_args) = match nodes {
            None => ("40000-40999", Vec::new()),
            Some(nodes) => {
                psql(
                    &args.database,
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
                )?;
                let url = with_search_path(&args.database, &schema);
                let s3_port = servers::free_port()?.to_string();
                let demo_args = ["--nodes", &nodes.to_string(), "--database", &url]
                    .into_iter()
                    .chain(["--s3-port", &s3_port])
                    .map(str::to_owned)
                    .collect();
                // Below the ephemeral ports, which the balancer cannot always bind.
                ("28000-28999", demo_args)
            }
        };
        let server = servers::gateway_with(passive, &[], &demo_args)?;
        let target = &server.target;
        eprintln!("   small: {small} files");
        let small_rate = load::small(target, &format!("small-{run_id}"), small).await?;
        eprintln!("   parallel: {sessions} × {per_session}");
        let parallel = load::parallel(
            target,
            &format!("par-{run_id}"),
            sessions,
            per_session,
            Some(crate::heartbeat_status_3),
        )
        .await?;
        let latency = parallel
            .status_latency
            .context("the gateway's status latency")?;
        results.push(Measured {
            setup: setup.into(),
            small_files_per_second: small_rate,
            parallel_files_per_second: parallel.files_per_sec,
            parallel_p50_ms: parallel.p50_ms,
            parallel_p99_ms: parallel.p99_ms,
            status_3_p50_ms: latency.p50_ms,
            status_3_p99_ms: latency.p99_ms,
        });
        drop(server);
        if nodes.is_some() {
            psql(
                &args.database,
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            )?;
        }
    }
    args.files.write_part(
        "stores",
        &results,
        &markdown(&results, small, sessions, per_session),
    )
}

/// `url` with `schema` as the search path of every connection.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .context("running psql")?;
    ensure!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn markdown(results: &[Measured], small: usize, sessions: usize, per_session: usize) -> String {
    let mut md = String::from("## The gateway on its production stores\n\n");
    let _ = writeln!(
        md,
        "Written by `mftgw-bench stores`: the same load generator as above, on the gateway \
         alone, in one run: the embedded demo, then `mftgw demo --nodes 1` and `--nodes 3` \
         (PostgreSQL on this machine, `s3s-fs` for S3, Debian's HAProxy sending PROXY v2 to \
         every node, all on these 2 cores). Small files: {small} × 2 KiB in one session; \
         parallel: {sessions} sessions × {per_session} × 2 KiB; the status_3 latency as \
         above, over the parallel scenario's uploads. Every upload is a committed \
         transaction (its body in the bucket) before its `226`.\n"
    );
    md.push_str(
        "| set-up | small files/s ↑ | parallel files/s ↑ | per-file p50 ms ↓ | per-file p99 ms ↓ | status_3 p50 ms ↓ | status_3 p99 ms ↓ |\n|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            result.setup,
            result.small_files_per_second,
            result.parallel_files_per_second,
            result.parallel_p50_ms,
            result.parallel_p99_ms,
            result.status_3_p50_ms,
            result.status_3_p99_ms
        );
    }
    md
}
