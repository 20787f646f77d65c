//! `mftgw-bench emcs`: signed and encrypted EMCS calls per second, the gateway side by side
//! with a WSS4J 1.6 echo (`wss4j/WssEcho.java`: the same WS-Security work, nothing else),
//! each server pinned to one core and the load generator to the other.
//!
//! Every request is secured before the clock starts (by `mftgw-wssec`, as the demo callers'
//! ERP would), sent over one kept-alive HTTPS connection per caller (the gateway allows a
//! caller no concurrent calls), and every answer is opened and verified after it stops.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use mftgw_client::{TlsVersions, client_config};
use mftgw_wssec::seal::{Credentials, EncryptFor, seal};
use mftgw_wssec::wsse::{self, Policy};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::servers::{self, Process};

const SERVICE_PATH: &str = "/EMCS_OIOLedsageDokumentOpret/OIOLedsageDokumentOpretServicePort";
const IE815: &str = include_str!("../../emcs/src/samples/ie815.xml");
const JARS: [&str; 6] = [
    "wss4j",
    "xmlsec",
    "commons-logging",
    "commons-codec",
    "slf4j-api",
    "slf4j-simple",
];

#[derive(clap::Args)]
pub struct EmcsArgs {
    /// Calls per caller (there are two callers, each on its own connection).
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// `emcs.json` and `emcs.md` go to `--out` (BENCHMARKS.md includes `emcs.md`).
    #[command(flatten)]
    files: crate::report::ReportFiles,
}

/// One server's figures.
#[derive(Debug, Serialize, Deserialize)]
pub struct Measured {
    pub server: String,
    pub calls: usize,
    pub calls_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers that opened and verified, named the call's TransaktionIdentifikator and
    /// carried no error.
    pub verified: usize,
}

/// A demo caller: its credentials and what its requests say.
struct Caller {
    credentials: Credentials,
    se_number: String,
    excise_number: String,
}

pub async fn run(args: EmcsArgs) -> anyhow::Result<()> {
    pin_self_to_core(1)?;
    let gateway = servers::gateway(
        "46000-46099",
        &[
            ("MFTGW__EMCS__SUBMIT_SPACING_SECS".into(), "0".into()),
            ("MFTGW__EMCS__RECEIVE_SPACING_SECS".into(), "0".into()),
        ],
    )?;
    let emcs = &gateway.demo["emcs"];
    let path = |value: &serde_json::Value| PathBuf::from(value.as_str().unwrap_or_default());
    let ca = path(&emcs["tls_ca_pem"]);
    let gateway_wss = CertificateDer::from_pem_file(path(&emcs["server_wss_cert_pem"]))?;
    let recipient = EncryptFor::from_certificate(&gateway_wss)?;
    let callers: Vec<Caller> = emcs["users"]
        .as_array()
        .context("demo.json has no emcs.users")?
        .iter()
        .map(|user| {
            let certificate = CertificateDer::from_pem_file(path(&user["cert_pem"]))?;
            let key = std::fs::read_to_string(path(&user["key_pem"]))?;
            Ok(Caller {
                credentials: Credentials::from_pem(&certificate, &key)?,
                se_number: user["se_number"].as_str().unwrap_or_default().into(),
                excise_number: user["excise_number"].as_str().unwrap_or_default().into(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let gateway_addr: SocketAddr = emcs["endpoints"]["OIOLedsageDokumentOpret"]
        .as_str()
        .and_then(|url| url.strip_prefix("https://"))
        .and_then(|rest| rest.split('/').next())
        .context("demo.json has no emcs endpoint")?
        .parse()?;
    pin_to_core(gateway.target.pid, 0)?;

    let work = tempfile::tempdir()?;
    let echo = start_echo(work.path(), &gateway.demo)?;
    pin_to_core(echo.process.id(), 0)?;

    let mut results = Vec::new();
    for (server, addr) in [("gateway", gateway_addr), ("WSS4J echo", echo.addr)] {
        eprintln!("== EMCS: {server}");
        // Warm-up: the JIT, the TLS sessions, the store's first pages.
        measure(server, addr, &ca, &callers, &recipient, 20).await?;
        results.push(measure(server, addr, &ca, &callers, &recipient, args.calls).await?);
    }
    drop(echo);
    drop(gateway);
    args.files
        .write_part("emcs", &results, &markdown(&results, args.calls))
}

/// The calls of every caller, secured at once, then sent and timed, then verified.
async fn measure(
    server: &str,
    addr: SocketAddr,
    ca: &Path,
    callers: &[Caller],
    recipient: &EncryptFor,
    calls: usize,
) -> anyhow::Result<Measured> {
    let run = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let ids: Vec<Vec<String>> = (0..callers.len())
        .map(|caller| {
            (0..calls)
                .map(|call| format!("bench-{run}-{caller}-{call}"))
                .collect()
        })
        .collect();
    let requests: Vec<Vec<String>> = callers
        .iter()
        .zip(&ids)
        .map(|(caller, ids)| {
            ids.iter()
                .map(|id| request(caller, id, recipient))
                .collect::<anyhow::Result<_>>()
        })
        .collect::<anyhow::Result<_>>()?;
    let tls = client_config(ca, None, TlsVersions::Default)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (caller, requests) in requests.into_iter().enumerate() {
        let tls = Arc::clone(&tls);
        tasks.spawn(async move {
            let mut connection = Connection::open(addr, tls).await?;
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                let sent = Instant::now();
                let (status, answer) = connection.post(SERVICE_PATH, request.as_bytes()).await?;
                ensure!(
                    status == 200,
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
                answers.push((sent.elapsed(), answer));
            }
            anyhow::Ok((caller, answers))
        });
    }
    let mut answered = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answered.push(joined??);
    }
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut verified = 0;
    let now = OffsetDateTime::now_utc();
    for (caller, answers) in &answered {
        let recipient = &callers[*caller].credentials.recipient;
        // A connection's answers come in the order of its requests.
        for ((latency, answer), id) in answers.iter().zip(&ids[*caller]) {
            latencies.push(*latency);
            let text = std::str::from_utf8(answer)?;
            let opened = wsse::open(text, now, &Policy::default(), recipient)
                .with_context(|| format!("{server}: an answer does not open: {text}"))?;
            let content = opened.body_content();
            if !content.contains("FejlStruktur") && content.contains(&format!(">{id}<")) {
                verified += 1;
            }
        }
    }
    let (p50_ms, p99_ms) = crate::load::percentiles(&mut latencies);
    let total = latencies.len();
    eprintln!(
        "   {total} calls in {:.2} s, {verified} verified",
        elapsed.as_secs_f64()
    );
    Ok(Measured {
        server: server.to_owned(),
        calls: total,
        calls_per_second: total as f64 / elapsed.as_secs_f64(),
        p50_ms,
        p99_ms,
        verified,
    })
}

/// `caller`'s OIOLedsageDokumentOpret request `id` with SKAT's sample IE815, secured.
fn request(caller: &Caller, id: &str, recipient: &EncryptFor) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let ie815 = IE815
        .split_once("?>")
        .map_or(IE815, |(_, rest)| rest)
        .replace("DK82065873300", &caller.excise_number);
    let body = format!(
        r#"<s:OIOLedsageDokumentOpret_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1" xmlns:k="http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/" xmlns:v="http://rep.oio.dk/skat.dk/motor/class/virksomhed/xml/schemas/20080401/" xmlns:e="urn:oio:skat:emcs:1.0.1"><k:HovedOplysninger><k:TransaktionIdentifikator>{id}</k:TransaktionIdentifikator><k:TransaktionTid>{time}</k:TransaktionTid></k:HovedOplysninger><s:VirksomhedIdentifikationStruktur><s:Indberetter><v:VirksomhedSENummerIdentifikator>{se}</v:VirksomhedSENummerIdentifikator></s:Indberetter><e:AfgiftOperatoerPunktAfgiftIdentifikator>{excise}</e:AfgiftOperatoerPunktAfgiftIdentifikator></s:VirksomhedIdentifikationStruktur><s:IE815Struktur>{ie815}</s:IE815Struktur></s:OIOLedsageDokumentOpret_I>"#,
        time = now.format(&time::format_description::well_known::Rfc3339)?,
        se = caller.se_number,
        excise = caller.excise_number,
    );
    Ok(seal(
        &body,
        now,
        Duration::from_secs(60),
        &caller.credentials.signer,
        recipient,
    )?)
}

/// One kept-alive HTTPS/1.1 connection.
struct Connection {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Ok(Self {
            tls,
            buffer: Vec::new(),
        })
    }

    /// POSTs `body` to `path`: the status and the body of the answer.
    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"\"\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.tls.write_all(head.as_bytes()).await?;
        self.tls.write_all(body).await?;
        self.tls.flush().await?;
        let end = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .context("no HTTP status")?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .context("no Content-Length")?;
        while self.buffer.len() < end + length {
            self.fill().await?;
        }
        let answer = self.buffer[end..end + length].to_vec();
        self.buffer.drain(..end + length);
        Ok((status, answer))
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.tls.read(&mut chunk).await?;
        ensure!(read > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

/// The WSS4J echo, listening.
struct Echo {
    process: Process,
    addr: SocketAddr,
}

/// Compiles and starts the WSS4J echo with the demo's TLS certificate, the gateway's
/// WS-Security key and the demo's CAs.
fn start_echo(dir: &Path, demo: &serde_json::Value) -> anyhow::Result<Echo> {
    let data = PathBuf::from(
        demo["config"]
            .as_str()
            .context("demo.json names no config")?,
    )
    .parent()
    .context("the config has no directory")?
    .to_path_buf();
    let pki = mftgw_testpki::TestPki::load(&data.join("pki"))?;
    let gateway = pki
        .client("emcs-gateway")
        .context("the demo PKI has no emcs-gateway")?;
    let classpath = {
        let mut entries = vec![dir.join("classes").display().to_string()];
        entries.extend(JARS.iter().map(|jar| format!("/usr/share/java/{jar}.jar")));
        entries.join(":")
    };
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/wss4j/WssEcho.java");
    tool(
        Command::new("javac")
            .arg("-d")
            .arg(dir.join("classes"))
            .args(["-cp", &classpath, source]),
    )?;
    let tls = dir.join("tls.p12");
    tool(
        Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:changeit", "-in"])
            .arg(&pki.server().cert_chain_pem)
            .arg("-inkey")
            .arg(&pki.server().key_pem)
            .arg("-out")
            .arg(&tls),
    )?;
    let trust = dir.join("trust.p12");
    for (alias, certificate) in [
        ("root", pki.root_ca_pem()),
        ("oces3", pki.issuing_ca_pem("oces3").context("no OCES3 CA")?),
    ] {
        tool(
            Command::new("keytool")
                .args(["-importcert", "-noprompt", "-storetype", "PKCS12"])
                .args(["-storepass", "changeit", "-alias", alias, "-file"])
                .arg(certificate)
                .arg("-keystore")
                .arg(&trust),
        )?;
    }
    let port = servers::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let process = servers::start(
        Command::new("java")
            .args(["-XX:ActiveProcessorCount=1", "-cp", &classpath, "WssEcho"])
            .arg(port.to_string())
            .arg(&tls)
            .arg("changeit")
            .arg(&gateway.p12)
            .arg(&gateway.p12_password)
            .arg(&trust)
            .arg("4"),
        &dir.join("echo.log"),
        addr,
        "the WSS4J echo",
    )?;
    Ok(Echo { process, addr })
}

fn tool(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("{command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Pins every thread of process `pid` to core `core`.
fn pin_to_core(pid: u32, core: usize) -> anyhow::Result<()> {
    tool(Command::new("taskset").args(["-a", "-cp", &core.to_string(), &pid.to_string()]))
}

fn pin_self_to_core(core: usize) -> anyhow::Result<()> {
    pin_to_core(std::process::id(), core)
}

fn markdown(results: &[Measured], calls: usize) -> String {
    let mut md = String::from(
        "## EMCS B2B web services\n\nWritten by `mftgw-bench emcs`: signed and encrypted `OIOLedsageDokumentOpret` calls (SKAT's sample IE815; RSA-SHA1 over Timestamp, Body and token; 3DES-CBC Body under an RSA v1.5 key, each way) from the demo's two callers, one kept-alive HTTPS connection each (a caller may not call concurrently), every request secured before the clock starts and every answer opened and verified after it. Each server is pinned to core 0 (`taskset`; the JVM with `-XX:ActiveProcessorCount=1`), the load generator to core 1. The gateway does the whole call (checks, a committed transaction, delivery to the simulated EMCS, the answer committed, the ARC); the echo (`crates/bench/wss4j/WssEcho.java`, WSS4J 1.6 on the JDK's HTTPS server, 4 threads) only decrypts, verifies and answers with HovedOplysningerSvar.\n\n",
    );
    let _ = writeln!(
        md,
        "| server | calls | calls/s ↑ | p50 ms ↓ | p99 ms ↓ | answers verified |\n|---|---|---|---|---|---|"
    );
    for result in results {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            result.server,
            result.calls,
            result.calls_per_second,
            result.p50_ms,
            result.p99_ms,
            result.verified
        );
    }
    if let [gateway, echo] = results {
        let _ = writeln!(
            md,
            "\nGateway / WSS4J echo: {:.2}× the calls per second ({calls} calls per caller).",
            gateway.calls_per_second / echo.calls_per_second
        );
    }
    md
}
