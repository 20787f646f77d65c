//! The load generator: each scenario of the benchmark against one FTPS server, with
//! [`mftgw_client`] (tokio + rustls, `TCP_NODELAY` on every socket, explicit FTPS with the
//! client certificate, `PBSZ 0`/`PROT P`, passive mode, data connections resuming the
//! session's own TLS session).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mftgw_client::FtpsClient;
use rustls::ClientConfig;
use rustls::client::Resumption;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Barrier, mpsc};

/// An FTPS server to measure, and how to use it.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    /// TLS 1.2 with the client certificate; each session gets its own session cache.
    pub tls: Arc<ClientConfig>,
    /// Where uploads go (`/FTPSGW.Heartbeat` on the gateway).
    pub upload_dir: String,
    /// The server process, whose memory (with its children's) the idle scenario measures.
    pub pid: u32,
}

/// Sessions that log in at once before a burst.
const LOGINS_AT_ONCE: usize = 16;

/// A login that takes longer has failed (a server that stopped answering).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The size of a small file, as the scenarios say.
pub const SMALL_FILE: usize = 2 * 1024;

impl Target {
    /// A configuration whose resumption cache is this session's alone, so that its data
    /// connections resume its own control session (ProFTPD insists).
    fn session_tls(&self) -> Arc<ClientConfig> {
        let mut config = (*self.tls).clone();
        config.resumption = Resumption::in_memory_sessions(8);
        Arc::new(config)
    }

    pub async fn login(&self) -> anyhow::Result<FtpsClient> {
        let login = FtpsClient::login(self.addr, self.session_tls(), &self.user, &self.password);
        tokio::time::timeout(LOGIN_TIMEOUT, login)
            .await
            .with_context(|| format!("{}: no login within {LOGIN_TIMEOUT:?}", self.name))?
            .with_context(|| format!("logging in to {}", self.name))
    }

    /// A login with a full TLS handshake: no resumption at all.
    async fn full_login(&self) -> anyhow::Result<FtpsClient> {
        let mut config = (*self.tls).clone();
        config.resumption = Resumption::disabled();
        let login = FtpsClient::login(self.addr, Arc::new(config), &self.user, &self.password);
        tokio::time::timeout(LOGIN_TIMEOUT, login)
            .await
            .with_context(|| format!("{}: no login within {LOGIN_TIMEOUT:?}", self.name))?
            .with_context(|| format!("logging in to {}", self.name))
    }
}

/// Uploads `content` as `path`; `Err` unless the server answers `226`.
async fn store(client: &mut FtpsClient, path: &str, content: &[u8]) -> anyhow::Result<()> {
    let mut data = client.open_transfer(&format!("STOR {path}")).await?;
    data.write_all(content).await?;
    data.shutdown().await?;
    let reply = client.read_reply().await?;
    if reply.code != 226 {
        bail!("STOR {path}: {} {}", reply.code, reply.text);
    }
    Ok(())
}

/// The whole data stream of `command` (`LIST`, `MLSD`, `NLST`); `Err` unless `226`.
pub async fn fetch(client: &mut FtpsClient, command: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = client.open_transfer(command).await?;
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut data, &mut bytes).await?;
    // vsftpd answers 226 only after the client's close_notify too.
    data.shutdown().await?;
    let reply = client.read_reply().await?;
    if reply.code != 226 {
        bail!("{command}: {} {}", reply.code, reply.text);
    }
    Ok(bytes)
}

/// Bytes that do not repeat in any short period (TLS does not compress, but be fair to
/// servers that might).
pub fn payload(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// One session uploads one file of `bytes`; MB/s (10^6 bytes) from `STOR` to `226`.
pub async fn bulk(target: &Target, name: &str, bytes: u64) -> anyhow::Result<f64> {
    const CHUNK: usize = 1 << 20;
    let chunk = payload(CHUNK);
    let mut client = target.login().await?;
    let path = format!("{}/{name}", target.upload_dir);
    let started = Instant::now();
    let mut data = client.open_transfer(&format!("STOR {path}")).await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        data.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    data.shutdown().await?;
    let reply = client.read_reply().await?;
    let elapsed = started.elapsed();
    if reply.code != 226 {
        bail!("{}: bulk STOR: {} {}", target.name, reply.code, reply.text);
    }
    Ok(bytes as f64 / 1e6 / elapsed.as_secs_f64())
}

/// One session uploads `files` files of 2 KiB, one after another; files/s.
pub async fn small(target: &Target, prefix: &str, files: usize) -> anyhow::Result<f64> {
    let content = payload(SMALL_FILE);
    let mut client = target.login().await?;
    let started = Instant::now();
    for i in 0..files {
        store(
            &mut client,
            &format!("{}/{prefix}-{i}.xml", target.upload_dir),
            &content,
        )
        .await?;
    }
    Ok(files as f64 / started.elapsed().as_secs_f64())
}

/// What the parallel scenario measured.
pub struct Parallel {
    pub files_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Gateway only: from `226` to the heartbeat's status_3 being in `/out`.
    pub status_latency: Option<Latency>,
}

pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub samples: usize,
}

/// `sessions` sessions log in, then all upload `per_session` files of 2 KiB at once; files/s
/// over the whole burst and per-file latency. With `status_of`, the names whose status_3
/// must appear in `/out` are watched (by `SIZE`, from separate sessions) and timed from the
/// upload's `226`.
pub async fn parallel(
    target: &Target,
    prefix: &str,
    sessions: usize,
    per_session: usize,
    status_of: Option<fn(&str) -> String>,
) -> anyhow::Result<Parallel> {
    const OBSERVERS: usize = 4;
    let content = Arc::new(payload(SMALL_FILE));
    let barrier = Arc::new(Barrier::new(sessions + 1));
    // The sessions log in a few at a time (a burst overflows the peers' listen backlogs);
    // the uploads start together once all are in.
    let logging_in = Arc::new(tokio::sync::Semaphore::new(LOGINS_AT_ONCE));
    let (uploaded, watched) = mpsc::unbounded_channel::<(String, Instant)>();
    let observers = match status_of {
        Some(status_of) => Some(watch_status(target, watched, status_of, OBSERVERS).await?),
        None => None,
    };
    let mut workers = tokio::task::JoinSet::new();
    for session in 0..sessions {
        let (target, content, barrier) = (target.clone(), content.clone(), barrier.clone());
        let logging_in = logging_in.clone();
        let uploaded = status_of.map(|_| uploaded.clone());
        let prefix = format!("{prefix}-{session}");
        workers.spawn(async move {
            let login = {
                let _turn = logging_in.acquire().await;
                target.login().await
            };
            barrier.wait().await;
            let mut client = login?;
            let mut latencies = Vec::with_capacity(per_session);
            for i in 0..per_session {
                let name = format!("{prefix}-{i}.xml");
                let started = Instant::now();
                store(
                    &mut client,
                    &format!("{}/{name}", target.upload_dir),
                    &content,
                )
                .await?;
                let done = Instant::now();
                latencies.push(done - started);
                if let Some(uploaded) = &uploaded {
                    let _ = uploaded.send((name, done));
                }
            }
            anyhow::Ok(latencies)
        });
    }
    drop(uploaded);
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while let Some(joined) = workers.join_next().await {
        latencies.extend(joined??);
    }
    let elapsed = started.elapsed();
    let status_latency = match observers {
        Some(observers) => Some(observers.await??),
        None => None,
    };
    let (p50_ms, p99_ms) = percentiles(&mut latencies);
    Ok(Parallel {
        files_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms,
        p99_ms,
        status_latency,
    })
}

/// The first look for a status file comes this soon after the `226`; each miss doubles the
/// wait, up to [`STATUS_CHECK_MAX_INTERVAL`], which bounds how much a latency is overstated.
const STATUS_CHECK_FIRST_INTERVAL: Duration = Duration::from_millis(1);
const STATUS_CHECK_MAX_INTERVAL: Duration = Duration::from_millis(10);

/// A status file being waited for.
struct Awaited {
    path: String,
    uploaded_at: Instant,
    check_at: Instant,
    interval: Duration,
}

/// Sessions that look for each uploaded name's status file with `SIZE` until it exists, and
/// report the latencies from each `226`. A name is looked for on a schedule (1 ms after its
/// `226`, then at doubling intervals up to 10 ms): polling without pause would take the
/// gateway's CPU from the very uploads it measures.
async fn watch_status(
    target: &Target,
    mut uploads: mpsc::UnboundedReceiver<(String, Instant)>,
    status_of: fn(&str) -> String,
    observers: usize,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Latency>>> {
    let mut clients = Vec::new();
    for _ in 0..observers {
        clients.push(target.login().await?);
    }
    Ok(tokio::spawn(async move {
        let deadline = Duration::from_secs(120);
        let awaited = |(name, uploaded_at): (String, Instant)| Awaited {
            path: status_of(&name),
            uploaded_at,
            check_at: uploaded_at + STATUS_CHECK_FIRST_INTERVAL,
            interval: STATUS_CHECK_FIRST_INTERVAL,
        };
        let mut pending: Vec<Awaited> = Vec::new();
        let mut latencies = Vec::new();
        let mut closed = false;
        while !(closed && pending.is_empty()) {
            let next_check = pending.iter().map(|waiting| waiting.check_at).min();
            tokio::select! {
                upload = uploads.recv(), if !closed => match upload {
                    Some(upload) => pending.push(awaited(upload)),
                    None => closed = true,
                },
                () = tokio::time::sleep_until(next_check.unwrap_or_else(Instant::now).into()),
                    if next_check.is_some() => {}
            }
            while let Ok(upload) = uploads.try_recv() {
                pending.push(awaited(upload));
            }
            let now = Instant::now();
            let (due, waiting): (Vec<Awaited>, Vec<Awaited>) = pending
                .drain(..)
                .partition(|waiting| waiting.check_at <= now);
            pending = waiting;
            let mut shares: Vec<Vec<Awaited>> = (0..clients.len()).map(|_| Vec::new()).collect();
            for (index, waiting) in due.into_iter().enumerate() {
                shares[index % clients.len()].push(waiting);
            }
            let checks = clients
                .iter_mut()
                .zip(shares)
                .map(|(client, share)| async move {
                    let mut missing = Vec::new();
                    let mut found = Vec::new();
                    for mut waiting in share {
                        if client
                            .command(&format!("SIZE {}", waiting.path))
                            .await?
                            .code
                            == 213
                        {
                            found.push(waiting.uploaded_at.elapsed());
                        } else if waiting.uploaded_at.elapsed() > deadline {
                            bail!("{} did not appear within {deadline:?}", waiting.path);
                        } else {
                            waiting.interval =
                                (waiting.interval * 2).min(STATUS_CHECK_MAX_INTERVAL);
                            waiting.check_at = Instant::now() + waiting.interval;
                            missing.push(waiting);
                        }
                    }
                    anyhow::Ok((found, missing))
                });
            for checked in futures_util::future::join_all(checks).await {
                let (found, missing) = checked?;
                latencies.extend(found);
                pending.extend(missing);
            }
        }
        let samples = latencies.len();
        let (p50_ms, p99_ms) = percentiles(&mut latencies);
        Ok(Latency {
            p50_ms,
            p99_ms,
            samples,
        })
    }))
}

/// `workers` workers each make `each` full logins (TCP, TLS with the client certificate and
/// no resumption, `USER`/`PASS`, `PBSZ 0`/`PROT P`, `QUIT`); logins/s.
pub async fn logins(target: &Target, workers: usize, each: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let target = target.clone();
        set.spawn(async move {
            for _ in 0..each {
                let mut client = target.full_login().await?;
                client.command("QUIT").await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    Ok((workers * each) as f64 / started.elapsed().as_secs_f64())
}

/// Seconds for `LIST` and for `MLSD` (where the server has it) of `dir` on a logged-in
/// session; each listing must hold at least `entries` lines.
pub async fn list(
    target: &Target,
    dir: &str,
    entries: usize,
) -> anyhow::Result<(f64, Option<f64>)> {
    let mut client = target.login().await?;
    let list = timed_listing(&mut client, &format!("LIST {dir}"), entries).await?;
    // vsftpd 3.0 has no MLSD; FEAT says who does.
    let features = client.command("FEAT").await?;
    let mlsd = if features.text.contains("MLST") {
        Some(timed_listing(&mut client, &format!("MLSD {dir}"), entries).await?)
    } else {
        None
    };
    Ok((list, mlsd))
}

/// The median of this many listings is reported: one takes tens of milliseconds, where a
/// scheduling hiccup on a shared machine shows.
pub const LISTINGS: usize = 5;

async fn timed_listing(
    client: &mut FtpsClient,
    command: &str,
    entries: usize,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(LISTINGS);
    for _ in 0..LISTINGS {
        let started = Instant::now();
        let listing = fetch(client, command).await?;
        times.push(started.elapsed().as_secs_f64());
        let lines = listing
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        if lines < entries {
            bail!("{command}: {lines} lines, expected {entries}");
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[LISTINGS / 2])
}

/// Opens `sessions` logged-in sessions (`PROT P` set) and keeps them idle; returns the
/// server's memory growth per session in bytes (proportional set size of the server and
/// its children, after a pause).
pub async fn idle(target: &Target, sessions: usize) -> anyhow::Result<f64> {
    // More connection attempts at once overflow the peers' listen backlogs.
    const AT_ONCE: usize = 20;
    let before = crate::machine::tree_pss_bytes(target.pid)?;
    let mut open = Vec::with_capacity(sessions);
    while open.len() < sessions {
        let batch = AT_ONCE.min(sessions - open.len());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let target = target.clone();
            set.spawn(async move { target.login().await });
        }
        while let Some(joined) = set.join_next().await {
            open.push(joined??);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = crate::machine::tree_pss_bytes(target.pid)?;
    drop(open);
    Ok(after.saturating_sub(before) as f64 / sessions as f64)
}

/// p50 and p99 in milliseconds.
/// The median and the 99th percentile of `samples`, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}
