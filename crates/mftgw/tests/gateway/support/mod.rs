//! Runs the real `mftgw demo` binary on free ports in a temporary directory, and reads what a
//! user or operator would: `demo.json`, the FTPS port, and `mftgw audit`.

pub mod backend;
pub mod portal;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mftgw::demo::DemoManifest;
use serde_json::Value;

/// Every test's gateway offers passive ports from here.
const PASSIVE_RANGE: std::ops::RangeInclusive<u16> = 42000..=42999;
/// Attempts at starting a demo whose ports were taken between choosing and binding them.
const START_ATTEMPTS: usize = 3;

pub struct Demo {
    pub dir: tempfile::TempDir,
    manifest: Option<DemoManifest>,
    pub port: u16,
    child: Child,
    /// How many times the gateway's log has said it is listening (it is kept across restarts).
    listening_seen: usize,
    /// Arguments of `mftgw demo` besides the data directory and ports, kept for restarts.
    args: Vec<String>,
}

/// A command that runs the gateway (`prlimit … --`, `strace … --`), or nothing.
pub type Launcher<'a> = &'a [&'a str];

fn spawn_demo(
    dir: &Path,
    port: u16,
    env: &[(&str, &str)],
    launcher: Launcher<'_>,
    args: &[String],
) -> Child {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut command = match launcher.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary());
            command
        }
        None => Command::new(binary()),
    };
    command
        .args(["demo", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--ftps-port", &port.to_string()]);
    let [portal_port, api_port, legacy_port, emcs_port] = free_ports(port);
    command
        .args(["--portal-port", &portal_port.to_string()])
        .args(["--emcs-port", &emcs_port.to_string()])
        .args(["--api-port", &api_port.to_string()])
        .args(["--legacy-port", &legacy_port.to_string()]);
    // Every test's range, unless the test gives its own (a balancer holds all of its ports).
    for option in ["--passive-ports", "--legacy-passive-ports"] {
        if !args.iter().any(|arg| arg == option) {
            command
                .arg(option)
                .arg(format!("{}-{}", PASSIVE_RANGE.start(), PASSIVE_RANGE.end()));
        }
    }
    command
        .args(args)
        .env("MFTGW_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(log_file(dir));
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("spawning mftgw demo")
}

/// The gateway's stderr, appended across restarts.
fn log_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))
        .unwrap()
}

/// `N` ports free at this moment, distinct, other than `taken` (0: none), and outside the
/// passive range that every test's gateway uses (the kernel hands out ports from inside it
/// too).
pub fn free_ports<const N: usize>(taken: u16) -> [u16; N] {
    let mut listeners = Vec::with_capacity(N);
    while listeners.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port != taken && !PASSIVE_RANGE.contains(&port) {
            listeners.push(listener);
        }
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect();
    ports.try_into().unwrap()
}

/// What the demo logs when a port chosen for it was taken before it bound it.
const PORT_TAKEN: &str = "Address already in use";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mftgw")
}

impl Demo {
    pub fn start() -> Demo {
        Demo::start_with_env(&[])
    }

    /// Starts `mftgw demo` with extra environment (config overrides such as
    /// `MFTGW__FTPS__IDLE_TIMEOUT_SECS`) and waits until it accepts connections.
    pub fn start_with_env(env: &[(&str, &str)]) -> Demo {
        Demo::start_with_setup(env, |_| {})
    }

    /// Like [`Demo::start_with_env`], running `setup` on the data directory first (to place
    /// a test PKI there, for one).
    pub fn start_with_setup(env: &[(&str, &str)], setup: impl Fn(&Path)) -> Demo {
        Demo::start_launched(env, setup, &[])
    }

    /// Like [`Demo::start_with_setup`], with the gateway run by `launcher`.
    pub fn start_launched(
        env: &[(&str, &str)],
        setup: impl Fn(&Path),
        launcher: Launcher<'_>,
    ) -> Demo {
        Demo::launch(env, setup, launcher, Vec::new())
    }

    /// Starts `mftgw demo` with `env` and these arguments besides the data directory and
    /// ports (`--database <url>`, say).
    pub fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> Demo {
        let args = args.iter().map(|arg| arg.to_string()).collect();
        Demo::launch(env, |_| {}, &[], args)
    }

    fn launch(
        env: &[(&str, &str)],
        setup: impl Fn(&Path),
        launcher: Launcher<'_>,
        args: Vec<String>,
    ) -> Demo {
        // A port free a moment ago can be taken (by another test's passive listener) before
        // the demo binds it; then the demo exits saying so, and we try another port.
        for attempt in 1..=START_ATTEMPTS {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            setup(&dir.path().join("data"));
            let [port] = free_ports(0);
            let child = spawn_demo(dir.path(), port, env, launcher, &args);
            let mut demo = Demo {
                manifest: None,
                dir,
                port,
                child,
                listening_seen: 0,
                args: args.clone(),
            };
            match demo.wait_until_ready() {
                Ok(()) => return demo,
                Err(log) if attempt < START_ATTEMPTS && log.contains(PORT_TAKEN) => continue,
                Err(log) => panic!("mftgw demo did not start:\n{log}"),
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    /// Stops the gateway (SIGTERM, as an operator would) and starts it again on the same data
    /// directory and port.
    pub fn restart(&mut self) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "gateway exited with {status} on SIGTERM");
        self.start_again(&[]);
    }

    /// Kills the gateway with SIGKILL: no chance to clean up, as in a crash or power loss.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the stopped gateway again on the same data directory and FTPS port, with `env`
    /// (the portal and the API may move: their addresses are read from `demo.json` again).
    pub fn start_again(&mut self, env: &[(&str, &str)]) {
        for attempt in 1..=START_ATTEMPTS {
            // The log is kept across restarts: only this start's lost ports count.
            let lost_before = self.log().matches(PORT_TAKEN).count();
            self.child = spawn_demo(self.dir.path(), self.port, env, &[], &self.args);
            match self.wait_until_ready() {
                Ok(()) => return,
                Err(log)
                    if attempt < START_ATTEMPTS
                        && log.matches(PORT_TAKEN).count() > lost_before =>
                {
                    continue;
                }
                Err(log) => panic!("mftgw demo did not start again:\n{log}"),
            }
        }
    }

    /// Waits until the demo accepts connections and reads its `demo.json`; the gateway log if
    /// it exits first.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        self.wait_until_listening()?;
        let manifest = std::fs::read(self.data_dir().join("demo.json")).unwrap();
        self.manifest = Some(serde_json::from_slice(&manifest).unwrap());
        Ok(())
    }

    /// What the demo printed on standard output.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Waits until this demo process says in its log that it listens, and accepts a
    /// connection. A connection alone could reach another process that took the port.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let said = self.log().matches("FTPS listening").count();
            if said > self.listening_seen && TcpStream::connect(self.addr()).is_ok() {
                self.listening_seen = said;
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "demo not listening:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The config file `demo.json` names (a cluster demo's first node's), else where the
    /// demo writes it.
    pub fn config(&self) -> PathBuf {
        match &self.manifest {
            Some(manifest) if !manifest.config.as_os_str().is_empty() => manifest.config.clone(),
            _ => self.data_dir().join("mftgw.toml"),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The demo's `demo.json`, as it was when the demo last became ready.
    pub fn manifest(&self) -> &DemoManifest {
        self.manifest.as_ref().expect("the demo has started")
    }

    pub fn ca(&self) -> PathBuf {
        self.manifest().ca_pem.clone()
    }

    /// The demo user at `index` in `demo.json`.
    pub fn user(&self, index: usize) -> DemoUser {
        let user = &self.manifest().users[index];
        DemoUser {
            username: user.username.clone(),
            password: user.password.clone(),
            cert: user.cert_pem.clone(),
            key: user.key_pem.clone(),
            services: user.services.clone(),
        }
    }

    pub fn users(&self) -> Vec<DemoUser> {
        (0..self.manifest().users.len())
            .map(|i| self.user(i))
            .collect()
    }

    /// A refusal-case certificate from `demo.json` (`expired`, `revoked`, `foces`, ...).
    /// The legacy listener's port.
    pub fn legacy_port(&self) -> u16 {
        self.legacy().port
    }

    pub fn legacy(&self) -> &mftgw::demo::LegacyEndpoint {
        self.manifest()
            .legacy
            .as_ref()
            .expect("demo.json has a legacy listener")
    }

    /// The legacy user `index` of demo.json, logging in as `anonymous` (any name will do).
    pub fn legacy_user(&self, index: usize) -> (DemoUser, &mftgw::demo::LegacyUser) {
        let legacy = &self.legacy().users[index];
        let user = DemoUser {
            username: "anonymous".into(),
            password: "guest@example.com".into(),
            cert: legacy.cert_pem.clone(),
            key: legacy.key_pem.clone(),
            services: legacy.services.clone(),
        };
        (user, legacy)
    }

    pub fn certificate(&self, name: &str) -> DemoUser {
        let cert = self
            .manifest()
            .certificates
            .get(name)
            .unwrap_or_else(|| panic!("demo.json has no certificate {name}"));
        DemoUser {
            username: cert
                .username
                .clone()
                .unwrap_or_else(|| "CVR_00000000_UID_0".into()),
            password: cert.password.clone().unwrap_or_else(|| "irrelevant".into()),
            cert: cert.cert_pem.clone(),
            key: cert.key_pem.clone(),
            services: Vec::new(),
        }
    }

    pub fn tls(&self, user: &DemoUser) -> Arc<rustls::ClientConfig> {
        mftgw_client::client_config(
            &self.ca(),
            Some((&user.cert, &user.key)),
            mftgw_client::TlsVersions::Default,
        )
        .unwrap()
    }

    /// Runs an admin subcommand against this demo's config; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = Command::new(binary())
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("MFTGW_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "mftgw {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// All audit entries, oldest first.
    pub fn audit(&self) -> Vec<Value> {
        self.admin(&["audit", "--limit", "100000"])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits until an audit entry matches `action`, `outcome` and `reason`; returns it.
    pub fn wait_for_audit(&self, action: &str, outcome: &str, reason: Option<&str>) -> Value {
        self.wait_for_audit_where(&format!("{action}/{outcome}/{reason:?}"), |e| {
            e["action"] == action
                && e["outcome"] == outcome
                && reason.is_none_or(|r| e["reason"] == r)
        })
    }

    /// Revokes client `name` of the demo's test PKI (rewriting its CRL); the gateway reads
    /// the new CRL at its next refresh or SIGHUP.
    pub fn revoke_in_pki(&self, name: &str) {
        let (ok, stdout, stderr) = run(Command::new(binary())
            .args(["pki", "revoke"])
            .arg(self.data_dir().join("pki"))
            .arg(name)
            .env("MFTGW_LOG", "warn"));
        assert!(ok, "mftgw pki revoke {name} failed: {stdout}{stderr}");
    }

    /// The gateway's process id (under a launcher, the launcher's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Under a launcher that forks (strace), the gateway is the launcher's child and would
        // outlive it.
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub services: Vec<String>,
}

impl DemoUser {
    /// What `/` must hold for this user: one folder per service, plus `out`, sorted.
    pub fn expected_root(&self) -> Vec<String> {
        let mut names = self.services.clone();
        names.push("out".to_string());
        names.sort();
        names
    }
}

/// Runs a command and returns (success, stdout, stderr).
pub fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {:?}: {e}", command.get_program());
    });
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn fingerprint_of(cert_pem: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let leaf = rustls_pki_types::CertificateDer::pem_file_iter(cert_pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    mftgw_oces::certificate::fingerprint_sha256(&leaf)
}

impl Demo {
    /// Waits until an audit entry satisfies `matches`; returns it. `what` names it in failures.
    /// Refusals before login are aggregated per interval (5 s by default), so a repeated one
    /// can take that long to appear.
    pub fn wait_for_audit_where(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(entry) = self.audit().into_iter().find(|e| matches(e)) {
                return entry;
            }
            assert!(
                Instant::now() < deadline,
                "no audit entry {what}; log has:\n{:#?}",
                self.audit()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many audit entries satisfy `matches`.
    pub fn count_audit(&self, matches: impl Fn(&Value) -> bool) -> usize {
        self.audit().iter().filter(|e| matches(e)).count()
    }
}

/// When the certificate in `cert_pem` expires.
pub fn not_after(cert_pem: &Path) -> time::OffsetDateTime {
    use rustls::pki_types::pem::PemObject;
    let leaf = rustls_pki_types::CertificateDer::pem_file_iter(cert_pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    mftgw_oces::certificate::CertificateInfo::from_der(&leaf)
        .unwrap()
        .not_after
}

/// The gateway username the certificate in `cert_pem` names.
pub fn username_of(cert_pem: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let leaf = rustls_pki_types::CertificateDer::pem_file_iter(cert_pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    mftgw_oces::identity::identity_from_der(&leaf)
        .unwrap_or_else(|e| panic!("{} names no gateway user: {e}", cert_pem.display()))
        .username()
}

/// Runs curl against the demo as `user` on `path`, with `extra` arguments.
pub fn curl(demo: &Demo, user: &DemoUser, path: &str, extra: &[&str]) -> (bool, String, String) {
    curl_at(demo, demo.port, user, path, extra)
}

/// Runs curl against the demo's listener on `port` (the FTPS Gateway's or the legacy one).
pub fn curl_at(
    demo: &Demo,
    port: u16,
    user: &DemoUser,
    path: &str,
    extra: &[&str],
) -> (bool, String, String) {
    curl_to(demo, &format!("127.0.0.1:{port}"), user, path, extra)
}

/// curl as `user` against the FTPS server at `address` (`host:port`).
pub fn curl_to(
    demo: &Demo,
    address: &str,
    user: &DemoUser,
    path: &str,
    extra: &[&str],
) -> (bool, String, String) {
    run(Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--ssl-reqd",
            "--max-time",
            "120",
            "--cacert",
        ])
        .arg(demo.ca())
        .arg("--cert")
        .arg(&user.cert)
        .arg("--key")
        .arg(&user.key)
        .args(["-u", &format!("{}:{}", user.username, user.password)])
        .args(extra)
        .arg(format!("ftp://{address}{path}")))
}

/// The names in the user's `/out`, in listing order (curl `NLST`).
pub fn out_names(demo: &Demo, user: &DemoUser) -> Vec<String> {
    let (ok, names, err) = curl(demo, user, "/out/", &["--list-only"]);
    assert!(ok, "listing /out failed: {err}");
    names.lines().map(str::to_string).collect()
}

/// Waits (up to 30 s) until `/out` holds every name in `expected`; returns the listing.
pub fn wait_for_out(demo: &Demo, user: &DemoUser, expected: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = out_names(demo, user);
        if expected.iter().all(|name| names.contains(name)) {
            return names;
        }
        assert!(
            Instant::now() < deadline,
            "/out of {} never held {expected:?}; it holds {names:?}\n{}",
            user.username,
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The four files the heartbeat answers the upload `name` with, in the order they appear.
pub fn heartbeat_files(name: &str) -> Vec<String> {
    vec![
        format!("status_FTPSGW.Heartbeat_{name}_1.xml"),
        format!("status_FTPSGW.Heartbeat_{name}_2.xml"),
        format!("FTPSGW.Heartbeat_in_{name}_response.txt"),
        format!("status_FTPSGW.Heartbeat_{name}_3.xml"),
    ]
}

/// The text of the first `<name>` element of `xml`, unescaped; `None` if absent.
pub fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

impl Demo {
    /// The transactions `mftgw transactions` prints for `username`, newest first.
    pub fn transactions(&self, username: &str) -> Vec<Value> {
        self.admin(&["transactions", "--user", username, "--limit", "100000"])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Demo {
    /// Logs `user` in with the project's client: `AUTH TLS`, `USER`/`PASS`, `PBSZ 0`, `PROT P`.
    pub async fn try_login(
        &self,
        user: &DemoUser,
    ) -> Result<mftgw_client::FtpsClient, mftgw_client::ClientError> {
        mftgw_client::FtpsClient::login(self.addr(), self.tls(user), &user.username, &user.password)
            .await
    }

    pub async fn login(&self, user: &DemoUser) -> mftgw_client::FtpsClient {
        self.try_login(user)
            .await
            .unwrap_or_else(|e| panic!("login as {} failed: {e}", user.username))
    }

    /// Runs the Python ftplib script `tests/interop/<script>` as `user`; its arguments are
    /// host, port, CA, certificate, key, username, password, then `args`.
    pub fn python(&self, script: &str, user: &DemoUser, args: &[&str]) -> (bool, String, String) {
        self.python_at(self.port, script, user, args)
    }

    /// Like [`Demo::python`], against the listener on `port`.
    pub fn python_at(
        &self,
        port: u16,
        script: &str,
        user: &DemoUser,
        args: &[&str],
    ) -> (bool, String, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(script);
        run(Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &port.to_string()])
            .arg(self.ca())
            .arg(&user.cert)
            .arg(&user.key)
            .args([&user.username, &user.password])
            .args(args))
    }
}

/// The names `NLST path` lists.
pub async fn nlst(client: &mut mftgw_client::FtpsClient, path: &str) -> Vec<String> {
    let bytes = client.download(&format!("NLST {path}")).await.unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Lists `path` until it holds at least `at_least` names, or `within` has passed; returns the
/// last listing.
pub async fn list_until(
    client: &mut mftgw_client::FtpsClient,
    path: &str,
    at_least: usize,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let listed = nlst(client, path).await;
        if listed.len() >= at_least || Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
