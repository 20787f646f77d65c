//! The benchmark's results: `results.json`, a chart of the gateway/peer ratios
//! (`ratios.svg`), and `BENCHMARKS.md`, which states each target next to the measured ratio.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// Where a run's figures and the report go.
#[derive(clap::Args)]
pub struct ReportFiles {
    /// The figures (`results.json`, `ratios.svg`, the parts measured on their own) and the
    /// hand-written `analysis.md`.
    #[arg(long, default_value = "benchmarks")]
    pub out: std::path::PathBuf,
    /// The report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub markdown: std::path::PathBuf,
}

impl ReportFiles {
    /// Writes a part of the report measured on its own (`<name>.json` with `figures`, and
    /// `<name>.md`), then the report again, which includes it.
    pub fn write_part(
        &self,
        name: &str,
        figures: &impl Serialize,
        markdown: &str,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.out)?;
        std::fs::write(
            self.out.join(format!("{name}.json")),
            serde_json::to_string_pretty(figures)? + "\n",
        )?;
        let part = self.out.join(format!("{name}.md"));
        std::fs::write(&part, markdown)?;
        Report::read(&self.out)?.write(&self.out, &self.markdown)?;
        eprintln!("wrote {}", part.display());
        Ok(())
    }
}

/// One measured quantity of one scenario, on every server it ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// By server name (`gateway`, `vsftpd`, `proftpd`): the median of its samples.
    pub values: BTreeMap<String, f64>,
    /// By server name, one per repetition in the order they ran: the servers took turns
    /// (gateway, vsftpd, ProFTPD, gateway, …), so a repetition's values share the
    /// machine's moment.
    #[serde(default)]
    pub samples: BTreeMap<String, Vec<f64>>,
    /// What the gateway must achieve, if anything.
    pub goal: Option<Goal>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Goal {
    /// gateway / peer at least this (for "higher is better") or at most (for times).
    Ratio { peer: String, ratio: f64 },
    /// The gateway's value at most this.
    AtMost(f64),
    /// The gateway's value at least this.
    AtLeast(f64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub parameters: BTreeMap<String, String>,
    pub rows: Vec<Row>,
}

impl Row {
    pub fn new(scenario: &str, unit: &str, higher_is_better: bool) -> Row {
        Row {
            scenario: scenario.into(),
            unit: unit.into(),
            higher_is_better,
            values: BTreeMap::new(),
            samples: BTreeMap::new(),
            goal: None,
            note: String::new(),
        }
    }

    /// Gateway / `peer`: the median of the repetitions' ratios (each repetition's gateway
    /// value over the same repetition's peer value), or of the medians for a row without
    /// samples.
    pub fn ratio(&self, peer: &str) -> Option<f64> {
        match self.ratios(peer) {
            Some(ratios) => median(&ratios),
            None => Some(self.values.get("gateway")? / self.values.get(peer)?),
        }
    }

    /// The lowest and the highest of the repetitions' ratios to `peer`.
    pub fn ratio_spread(&self, peer: &str) -> Option<(f64, f64)> {
        let ratios = self.ratios(peer)?;
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (ratios.len() > 1).then_some((low, high))
    }

    fn ratios(&self, peer: &str) -> Option<Vec<f64>> {
        let (gateway, peer) = (self.samples.get("gateway")?, self.samples.get(peer)?);
        (!gateway.is_empty() && gateway.len() == peer.len())
            .then(|| gateway.iter().zip(peer).map(|(g, p)| g / p).collect())
    }

    /// The peer with the better median here, if any ran.
    pub fn best_peer(&self) -> Option<&'static str> {
        let better = |a: f64, b: f64| if self.higher_is_better { a > b } else { a < b };
        PEERS
            .into_iter()
            .filter_map(|peer| Some((peer, *self.values.get(peer)?)))
            .reduce(|best, next| if better(next.1, best.1) { next } else { best })
            .map(|(peer, _)| peer)
    }

    /// Whether the goal is met; `None` without a goal or without the values it needs.
    pub fn met(&self) -> Option<bool> {
        let gateway = *self.values.get("gateway")?;
        match self.goal.as_ref()? {
            Goal::Ratio { peer, ratio } => {
                let measured = self.ratio(peer)?;
                Some(if self.higher_is_better {
                    measured >= *ratio
                } else {
                    measured <= *ratio
                })
            }
            Goal::AtMost(limit) => Some(gateway <= *limit),
            Goal::AtLeast(limit) => Some(gateway >= *limit),
        }
    }

    fn goal_text(&self) -> String {
        match &self.goal {
            None => String::new(),
            Some(Goal::Ratio { peer, ratio }) if self.higher_is_better => {
                format!("≥ {ratio}× {peer}")
            }
            Some(Goal::Ratio { peer, ratio }) => format!("≤ {ratio}× {peer}"),
            Some(Goal::AtMost(limit)) => format!("≤ {} {}", number(*limit), self.unit),
            Some(Goal::AtLeast(limit)) => format!("≥ {} {}", number(*limit), self.unit),
        }
    }
}

fn number(value: f64) -> String {
    if !value.is_finite() {
        "–".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

const PEERS: [&str; 2] = ["vsftpd", "proftpd"];

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

impl Report {
    /// The report of an earlier run, from its `results.json`.
    pub fn read(out: &Path) -> anyhow::Result<Report> {
        Ok(serde_json::from_slice(&std::fs::read(
            out.join("results.json"),
        )?)?)
    }

    pub fn write(&self, out: &Path, markdown: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out)?;
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(out.join("ratios.svg"), self.chart())?;
        let chart = pathdiff(out.join("ratios.svg"), markdown);
        // The analysis of missed targets is written by hand (from profiles) and kept across
        // runs; the report carries it.
        let mut analysis = std::fs::read_to_string(out.join("analysis.md")).unwrap_or_default();
        // Written by `mftgw-bench emcs`, which measures other servers.
        if let Ok(emcs) = std::fs::read_to_string(out.join("emcs.md")) {
            analysis = format!("{}\n\n{emcs}", analysis.trim_end());
        }
        // Written by `mftgw-bench stores`, which measures the gateway's other set-ups.
        if let Ok(stores) = std::fs::read_to_string(out.join("stores.md")) {
            analysis = format!("{}\n\n{stores}", analysis.trim_end());
        }
        std::fs::write(markdown, self.markdown(&chart, &analysis))?;
        Ok(())
    }

    fn markdown(&self, chart: &str, analysis: &str) -> String {
        let m = &self.machine;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmarks\n\nWritten by `mftgw-bench run` (see \"Running\" below); every figure comes from \
             the same run, the gateway and its peers driven in turn by the same Rust load generator \
             (tokio + rustls, explicit FTPS with a client certificate, `PBSZ 0`/`PROT P`, passive mode, \
             TLS 1.2 with the data connections resuming the control session, `TCP_NODELAY`). The raw \
             figures are in `{}`.\n",
            chart.replace("ratios.svg", "results.json")
        );
        let _ = writeln!(
            md,
            "**Machine:** {} cores, {}; Linux {}; load average {} at the start, {} at the end. \
             One core's AES-128-GCM (`openssl speed -evp aes-128-gcm`, 16 KiB blocks): {} MB/s. \
             Client and servers share these cores, so absolute figures are lower bounds; the ratios \
             are what compares.\n",
            m.nproc,
            m.cpu_model,
            m.kernel,
            m.loadavg_start,
            m.loadavg_end,
            m.aes_128_gcm_mb_per_sec.map_or("–".into(), number)
        );
        let _ = writeln!(md, "**Parameters:** {}\n", {
            self.parameters
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let _ = writeln!(md, "![gateway / peer ratios]({chart})\n");
        let _ = writeln!(
            md,
            "| scenario | unit | gateway | vsftpd | ProFTPD | gateway / vsftpd | gateway / ProFTPD | target | met |\n|---|---|---|---|---|---|---|---|---|"
        );
        for row in &self.rows {
            let value = |server: &str| row.values.get(server).map_or("–".into(), |v| number(*v));
            let ratio = |peer: &str| {
                let spread = row.ratio_spread(peer).map_or(String::new(), |(low, high)| {
                    format!(" ({}–{})", number(low), number(high))
                });
                row.ratio(peer)
                    .map_or("–".into(), |r| format!("{}×{spread}", number(r)))
            };
            let met = match row.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                md,
                "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
                row.scenario,
                row.unit,
                if row.higher_is_better { " ↑" } else { " ↓" },
                value("gateway"),
                value("vsftpd"),
                value("proftpd"),
                ratio("vsftpd"),
                ratio("proftpd"),
                row.goal_text(),
                met
            );
        }
        let repeated = self
            .rows
            .iter()
            .any(|row| row.samples.values().any(|samples| samples.len() > 1));
        let _ = writeln!(
            md,
            "\n↑: more is better; ↓: less is better.{}\n",
            if repeated {
                " Each value is the median of the repetitions; a ratio is the median of the \
                 repetitions' ratios, with their lowest and highest in brackets. A target is \
                 judged on the median."
            } else {
                ""
            }
        );
        let notes: Vec<_> = self
            .rows
            .iter()
            .filter(|row| !row.note.is_empty())
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(md, "## Notes\n");
            for row in notes {
                let _ = writeln!(md, "- **{}**: {}", row.scenario, row.note);
            }
            md.push('\n');
        }
        if !analysis.trim().is_empty() {
            md.push_str(analysis.trim_end());
            md.push_str("\n\n");
        }
        md.push_str(RUNNING);
        md
    }

    /// A horizontal bar per (scenario, peer): the gateway/peer ratio on a log scale, 1× in
    /// the middle; bars to the right mean the gateway is better.
    fn chart(&self) -> String {
        let bars: Vec<(String, f64, bool)> = self
            .rows
            .iter()
            .flat_map(|row| {
                PEERS.iter().filter_map(move |peer| {
                    let ratio = row.ratio(peer)?;
                    let advantage = if row.higher_is_better {
                        ratio
                    } else {
                        1.0 / ratio
                    };
                    // Red only where this comparison is the missed target.
                    let missed = row.met() == Some(false)
                        && match &row.goal {
                            Some(Goal::Ratio {
                                peer: goal_peer, ..
                            }) => goal_peer == peer,
                            _ => true,
                        };
                    Some((format!("{} vs {peer}", row.scenario), advantage, !missed))
                })
            })
            .filter(|(_, advantage, _)| advantage.is_finite() && *advantage > 0.0)
            .collect();
        let (label_width, bar_width, row_height) = (300.0, 420.0, 26.0);
        let height = 60.0 + row_height * bars.len() as f64;
        let span = 2.0_f64; // log10: from 1/100× to 100×
        let x = |advantage: f64| {
            let log = advantage.log10().clamp(-span, span);
            label_width + bar_width / 2.0 + log / span * bar_width / 2.0
        };
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-weight=\"bold\">How many times better the gateway is than each peer (log scale; right of 1× is better)</text>\n",
            w = label_width + bar_width + 90.0
        );
        for tick in [0.01, 0.1, 1.0, 10.0, 100.0] {
            let tx = x(tick);
            let _ = write!(
                svg,
                "<line x1=\"{tx}\" y1=\"35\" x2=\"{tx}\" y2=\"{}\" stroke=\"{}\"/>\n<text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{tick}×</text>\n",
                height - 15.0,
                if tick == 1.0 { "#333" } else { "#ddd" },
                height - 2.0
            );
        }
        for (i, (label, advantage, ok)) in bars.iter().enumerate() {
            let y = 40.0 + row_height * i as f64;
            let (from, to) = (x(1.0), x(*advantage));
            let colour = if *advantage >= 1.0 && *ok {
                "#0a6b2d"
            } else if *ok {
                "#8a4b00"
            } else {
                "#a4001d"
            };
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"18\" fill=\"{colour}\"/>\n<text x=\"{}\" y=\"{}\">{}×</text>\n",
                label_width - 8.0,
                y + 14.0,
                label.replace('&', "&amp;").replace('<', "&lt;"),
                from.min(to),
                (to - from).abs().max(1.0),
                from.max(to) + 4.0,
                y + 14.0,
                number(*advantage)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// `target` relative to the directory of `from_file`.
fn pathdiff(target: std::path::PathBuf, from_file: &Path) -> String {
    let base = match from_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    let target = std::fs::canonicalize(&target).unwrap_or(target);
    target
        .strip_prefix(&base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| target.display().to_string())
}

const RUNNING: &str = "## Running\n\n\
```sh\n\
cargo build --release -p mftgw -p mftgw-bench\n\
sudo ./target/release/mftgw-bench run          # as root: installs vsftpd and unpacks ProFTPD\n\
./target/release/mftgw-bench render            # the report again, after editing benchmarks/analysis.md\n\
./target/release/mftgw-bench emcs              # EMCS calls/s beside a WSS4J echo (needs java, libwss4j-java, taskset)\n\
./target/release/mftgw-bench stores            # the gateway on PostgreSQL + S3, 1 and 3 nodes (needs psql, haproxy, s3s-fs)\n\
./target/release/mftgw-bench run --quick --targets gateway   # a smoke run, no root needed\n\
cargo bench -p mftgw-bench --bench hot_paths   # criterion: parsing, status XML, subjects, listings\n\
```\n\n\
The bench starts `mftgw demo` from its own target directory and the peers from Debian's \
packages (vsftpd installed with apt; ProFTPD, which conflicts with it, downloaded and \
unpacked with `dpkg -x` under `~/.cache/mftgw-bench`), all on 127.0.0.1 with disjoint \
passive ranges and a required client certificate from one test CA; the peers log in a local \
user with a SHA-512-crypt password, so that `PASS` does not measure a slow hash. It stops \
every server when it is done.\n";
