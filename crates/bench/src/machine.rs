//! Facts about the machine the benchmark ran on, and the memory of a server's processes.

use std::process::Command;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    /// 1-, 5- and 15-minute load averages when the run started and when it ended.
    pub loadavg_start: String,
    pub loadavg_end: String,
    pub kernel: String,
    /// `openssl speed -evp aes-128-gcm` on one core, 16 KiB blocks, MB/s.
    pub aes_128_gcm_mb_per_sec: Option<f64>,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            aes_128_gcm_mb_per_sec: aes_gcm_speed(),
        }
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One core's AES-128-GCM throughput on 16 KiB blocks, from `openssl speed`.
fn aes_gcm_speed() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-gcm",
            "-seconds",
            "2",
            "-bytes",
            "16384",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "AES-128-GCM   1234567.89k": thousands of bytes per second.
    let line = text
        .lines()
        .rev()
        .find(|line| line.to_ascii_lowercase().starts_with("aes-128-gcm"))?;
    let kilobytes: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kilobytes * 1e3 / 1e6)
}

/// The proportional set size of `pid` and all its descendants, in bytes: resident memory
/// with shared pages split among the processes that share them (fair to servers that fork
/// a process per session).
pub fn tree_pss_bytes(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in descendants_and_self(pid) {
        let rollup = match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            Ok(rollup) => rollup,
            Err(_) => continue, // gone in the meantime
        };
        let pss_kib: u64 = rollup
            .lines()
            .find_map(|line| line.strip_prefix("Pss:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no Pss in /proc/{pid}/smaps_rollup"))?;
        total += pss_kib * 1024;
    }
    Ok(total)
}

fn descendants_and_self(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name may hold spaces: the fields after it follow the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    tree
}

/// Open files the benchmark asks for: the gateway counts four per session (control, passive
/// listener, data connection, blob file) and the idle scenario holds ten thousand.
const WANTED_OPEN_FILES: libc::rlim_t = 1 << 16;

/// Raises this process's open-file limit (children inherit it) to [`WANTED_OPEN_FILES`],
/// past the hard limit where the process may (root), else to the hard limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    let wanted = limit.rlim_max.max(WANTED_OPEN_FILES);
    for candidate in [wanted, limit.rlim_max] {
        let raised = libc::rlimit {
            rlim_cur: candidate,
            rlim_max: candidate.max(limit.rlim_max),
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return candidate;
        }
    }
    limit.rlim_cur
}
