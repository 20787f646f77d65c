//! The servers under test, started and stopped by the benchmark itself, bound to 127.0.0.1
//! only: the gateway (`mftgw demo` from the same target directory as this binary) and the
//! peers vsftpd (Debian's package) and ProFTPD (Debian's packages unpacked with `dpkg -x`,
//! because they conflict with vsftpd in apt), configured for explicit FTPS with TLS 1.2+
//! and a required client certificate from the same test CA, with disjoint passive ranges.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mftgw_client::{TlsVersions, client_config};
use mftgw_testpki::TestPki;

use crate::load::Target;

/// A running server; stopped (with its process group) on drop.
pub struct Server {
    pub target: Target,
    /// Where a local directory listing can be filled directly (peers), if it can.
    pub list_root: Option<PathBuf>,
    /// The gateway's `demo.json` (`null` for the peers).
    pub demo: serde_json::Value,
    _process: Process,
    _dir: tempfile::TempDir,
}

/// A child process in its own process group, stopped with it on drop: SIGTERM, then
/// SIGKILL after 5 s.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Starts `command` (its output into `log`) and waits until it listens on `addr`.
pub fn start(
    command: &mut Command,
    log: &Path,
    addr: SocketAddr,
    what: &str,
) -> anyhow::Result<Process> {
    let mut child = spawn(command, log)?;
    wait_for_port(addr, &mut child, what)?;
    Ok(Process { child })
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on {addr} within 60 s")
}

/// Runs `command` in its own process group, with stdout and stderr into `log`.
fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log)?;
    Ok(command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()?)
}

/// `mftgw demo` in a fresh directory; the demo's MOCES user uploads to `FTPSGW.Heartbeat`,
/// so every upload is a committed transaction answered in `/out`.
pub fn gateway(passive: &str, overrides: &[(String, String)]) -> anyhow::Result<Server> {
    gateway_with(passive, overrides, &[])
}

/// [`gateway`] with more `mftgw demo` arguments (`--nodes 3 --database <url>`, say).
pub fn gateway_with(
    passive: &str,
    overrides: &[(String, String)],
    demo_args: &[String],
) -> anyhow::Result<Server> {
    let binary = std::env::current_exe()?
        .parent()
        .context("the benchmark binary has no directory")?
        .join("mftgw");
    ensure!(
        binary.exists(),
        "no {} (build it with `cargo build --release -p mftgw -p mftgw-bench`)",
        binary.display()
    );
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let process = start(
        Command::new(&binary)
            .args(["demo", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--ftps-port", &port.to_string(), "--passive-ports", passive])
            .args(["--portal-port", &free_port()?.to_string()])
            .args(["--api-port", &free_port()?.to_string()])
            .args(["--legacy-port", &free_port()?.to_string()])
            .args(["--emcs-port", &free_port()?.to_string()])
            .args(demo_args)
            .env("MFTGW_LOG", "warn")
            .env("MFTGW__FTPS__MAX_SESSIONS", "20000")
            .env("MFTGW__FTPS__MAX_SESSIONS_PER_IP", "20000")
            .env("MFTGW__FTPS__MAX_SESSIONS_PER_USER", "20000")
            .env("MFTGW__FTPS__MAX_PRE_LOGIN_SESSIONS", "20000")
            // The load comes from one address, as fast as it can: the peers limit no rate.
            .env("MFTGW__FTPS__CONNECTION_RATE_PER_IP", "0")
            .envs(overrides.iter().map(|(k, v)| (k, v))),
        &dir.path().join("gateway.log"),
        addr,
        "mftgw demo",
    )?;
    // A cluster's balancer listens before its nodes do; demo.json comes once they all do.
    let manifest_path = dir.path().join("data/demo.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !manifest_path.exists() {
        ensure!(Instant::now() < deadline, "no demo.json within 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path)?)?;
    let user = &manifest["users"][0];
    let path = |value: &serde_json::Value| PathBuf::from(value.as_str().unwrap_or_default());
    let tls = client_config(
        &path(&manifest["ca_pem"]),
        Some((&path(&user["cert_pem"]), &path(&user["key_pem"]))),
        TlsVersions::Tls12Only,
    )?;
    Ok(Server {
        target: Target {
            name: "gateway".into(),
            addr,
            user: user["username"].as_str().unwrap_or_default().to_string(),
            password: user["password"].as_str().unwrap_or_default().to_string(),
            tls,
            upload_dir: "/FTPSGW.Heartbeat".into(),
            pid: process.id(),
        },
        list_root: None,
        demo: manifest,
        _process: process,
        _dir: dir,
    })
}

/// The local account the peers log in as: a real user with a cheap SHA-512-crypt password,
/// so that `PASS` measures FTPS rather than a slow password hash.
const PEER_USER: &str = "ftpbench";
const PEER_PASSWORD: &str = "benchpass";

/// What the peers share: packages, the local user, a test PKI.
pub struct PeerSetup {
    cache: PathBuf,
    pki: TestPki,
    client: Arc<rustls::ClientConfig>,
}

impl PeerSetup {
    /// Installs what is missing (vsftpd from apt, ProFTPD unpacked into `cache`), creates
    /// the local user and a test PKI. Needs root.
    pub fn prepare(cache: &Path) -> anyhow::Result<PeerSetup> {
        std::fs::create_dir_all(cache)?;
        install_packages(cache)?;
        ensure_user()?;
        let pki_dir = cache.join("pki");
        let pki = TestPki::generate(&pki_dir)?;
        let client = pki
            .client("moces")
            .context("the test PKI has a moces client")?;
        let tls = client_config(
            &pki.root_ca_pem(),
            Some((&client.cert_pem, &client.key_pem)),
            // TLS 1.3 tickets are single-use and arrive on data connections the client never
            // reads from, so a session runs out of them; a TLS 1.2 session resumes any number
            // of times.
            TlsVersions::Tls12Only,
        )?;
        Ok(PeerSetup {
            cache: cache.to_path_buf(),
            pki,
            client: tls,
        })
    }

    fn target(&self, name: &str, port: u16, pid: u32) -> Target {
        Target {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            user: PEER_USER.into(),
            password: PEER_PASSWORD.into(),
            tls: Arc::clone(&self.client),
            upload_dir: "/upload".into(),
            pid,
        }
    }

    /// A state directory the peer's unprivileged processes can read: configuration, the
    /// server's key and chain, the CA file for client certificates, and its data root.
    fn state_dir(&self, name: &str) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mftgw-bench-{name}-"))
            .tempdir()?;
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("upload"))?;
        std::fs::create_dir_all(root.join("list"))?;
        let server = self.pki.server();
        let chain = std::fs::read_to_string(&server.cert_chain_pem)?;
        let mut certificates = chain.split_inclusive("-----END CERTIFICATE-----\n");
        std::fs::write(
            dir.path().join("server.pem"),
            certificates.next().unwrap_or_default(),
        )?;
        std::fs::write(
            dir.path().join("chain.pem"),
            certificates.collect::<String>(),
        )?;
        std::fs::write(dir.path().join("server.chain.pem"), &chain)?;
        std::fs::copy(&server.key_pem, dir.path().join("server.key"))?;
        let mut ca = std::fs::read_to_string(self.pki.root_ca_pem())?;
        ca.push_str(&std::fs::read_to_string(
            self.pki.issuing_ca_pem("oces2").context("oces2 CA")?,
        )?);
        std::fs::write(dir.path().join("ca.pem"), ca)?;
        run(Command::new("chmod").arg("755").arg(dir.path()))?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{PEER_USER}:{PEER_USER}"))
            .arg(&root))?;
        Ok((dir, root))
    }

    pub fn vsftpd(&self, passive: (u16, u16)) -> anyhow::Result<Server> {
        std::fs::create_dir_all("/var/run/vsftpd/empty")?;
        self.start("vsftpd", VSFTPD_CONF, passive, |conf| {
            let mut command = Command::new("/usr/sbin/vsftpd");
            command.arg(conf);
            command
        })
    }

    pub fn proftpd(&self, passive: (u16, u16)) -> anyhow::Result<Server> {
        let prefix = self.cache.join("proftpd");
        let template = PROFTPD_CONF.replace("@PREFIX@", &prefix.display().to_string());
        self.start("proftpd", &template, passive, |conf| {
            let mut command = Command::new(prefix.join("usr/sbin/proftpd"));
            command.args(["--nodaemon", "--config"]).arg(conf);
            command
        })
    }

    /// Renders `template` into a fresh state directory and starts the peer `name` with the
    /// command `command` builds for that configuration file.
    fn start(
        &self,
        name: &str,
        template: &str,
        passive: (u16, u16),
        command: impl FnOnce(&Path) -> Command,
    ) -> anyhow::Result<Server> {
        let (dir, root) = self.state_dir(name)?;
        let port = free_port()?;
        let config = template
            .replace("@PORT@", &port.to_string())
            .replace("@PASV_MIN@", &passive.0.to_string())
            .replace("@PASV_MAX@", &passive.1.to_string())
            .replace("@STATE@", &dir.path().display().to_string())
            .replace("@ROOT@", &root.display().to_string());
        let conf = dir.path().join(format!("{name}.conf"));
        std::fs::write(&conf, config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let process = start(
            &mut command(&conf),
            &dir.path().join(format!("{name}.out")),
            addr,
            name,
        )?;
        Ok(Server {
            target: self.target(name, port, process.id()),
            list_root: Some(root.join("list")),
            demo: serde_json::Value::Null,
            _process: process,
            _dir: dir,
        })
    }
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    ensure!(
        output.status.success(),
        "{:?} failed: {}{}",
        command,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// vsftpd from apt (with a policy that keeps its maintainer scripts from starting it);
/// ProFTPD's packages downloaded and unpacked under `cache/proftpd`, with the libraries
/// they need from apt.
fn install_packages(cache: &Path) -> anyhow::Result<()> {
    let proftpd = cache.join("proftpd");
    let have_vsftpd = Path::new("/usr/sbin/vsftpd").exists();
    let have_proftpd = proftpd.join("usr/sbin/proftpd").exists();
    if have_vsftpd && have_proftpd {
        return Ok(());
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let created_policy = !policy.exists();
    if created_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        run(Command::new("chmod").args(["755", "/usr/sbin/policy-rc.d"]))?;
    }
    let installed = (|| {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "--no-upgrade",
            ])
            .args([
                "vsftpd",
                "libhiredis0.14",
                "libmemcached11",
                "libmemcachedutil2",
            ])
            .args(["libpcre2-posix3", "libsodium23", "libidn2-0", "libcap2"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        let debs = cache.join("debs");
        std::fs::create_dir_all(&debs)?;
        run(Command::new("apt-get")
            .args(["download", "proftpd-core", "proftpd-mod-crypto"])
            .current_dir(&debs))?;
        for deb in std::fs::read_dir(&debs)? {
            run(Command::new("dpkg")
                .arg("-x")
                .arg(deb?.path())
                .arg(&proftpd))?;
        }
        anyhow::Ok(())
    })();
    if created_policy {
        let _ = std::fs::remove_file(policy);
    }
    installed
}

/// The local user's home: vsftpd changes into it before its `local_root`.
const PEER_HOME: &str = "/var/lib/mftgw-bench";

fn ensure_user() -> anyhow::Result<()> {
    if !Command::new("id").arg(PEER_USER).output()?.status.success() {
        run(Command::new("useradd").args(["-M", "-d", PEER_HOME, "-s", "/bin/sh", PEER_USER]))?;
    }
    std::fs::create_dir_all(PEER_HOME)?;
    run(Command::new("usermod").args(["-d", PEER_HOME, PEER_USER]))?;
    run(Command::new("chown")
        .arg(format!("{PEER_USER}:{PEER_USER}"))
        .arg(PEER_HOME))?;
    let hash = run(Command::new("openssl").args(["passwd", "-6", PEER_PASSWORD]))?;
    run(Command::new("usermod").args(["-p", hash.trim(), PEER_USER]))?;
    Ok(())
}

const VSFTPD_CONF: &str = include_str!("vsftpd.conf.in");
const PROFTPD_CONF: &str = include_str!("proftpd.conf.in");
