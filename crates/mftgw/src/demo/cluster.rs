//! `mftgw demo --nodes N`: the demo as the production topology, on one machine. N gateway
//! processes share one PostgreSQL database (`--database`) and one bucket of a real S3 server
//! (`s3s-fs`, started here on a directory of the demo), behind Debian's HAProxy, which
//! speaks PROXY protocol v2 to every node. HAProxy takes the single-node demo's addresses
//! (127.0.0.1 and its ports), so that `demo.json` and every script read the same; node `i`
//! listens on the same ports on 127.0.0.1`0+i` (127.0.0.11, …) and serves its own share of
//! the passive ranges, which the balancer forwards to it alone. The demo process supervises:
//! on SIGINT or SIGTERM it stops the nodes, the balancer and the S3 server, and if it dies
//! they are told to end too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use super::{DemoArgs, DemoTokens};
use crate::config::{
    Config, ProxyProtocolConfig, S3Config, default_part_bytes, default_region, parse_port_range,
};

/// Where HAProxy connects to the nodes from: the one address whose connections must start
/// with a PROXY header. A client on 127.0.0.1 reaches a node directly, without one.
const BALANCER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// What HAProxy listens on, and what the nodes advertise for passive connections.
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const S3_ACCESS_KEY: &str = "mftgw-demo";
const BUCKET: &str = "blobs";
/// How long a node, the balancer or the S3 server has to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The most nodes: their addresses are 127.0.0.11 to 127.0.0.19.
pub const MAX_NODES: usize = 9;

/// One node in `demo.json`: how to reach it without the balancer, and how to stop or start
/// it again (`mftgw --config <config> serve`).
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoNode {
    /// Its node id, in every SKATTransactionId and audit record it makes.
    pub node_id: String,
    pub ftps: super::Endpoint,
    pub api_url: String,
    pub portal_url: String,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    /// Its standard output and error.
    pub log: PathBuf,
}

/// The processes of a running cluster demo.
pub(super) struct Cluster {
    s3: Child,
    nodes: Vec<Child>,
    balancer: Child,
}

/// The tools the cluster demo runs besides the gateway.
pub(super) struct Tools {
    pub s3_server: PathBuf,
    pub haproxy: PathBuf,
}

impl Tools {
    /// The S3 server from `--s3-server` (or `MFTGW_S3S_FS`), else `s3s-fs` where
    /// `scripts/cluster-demo` builds it; HAProxy from Debian's place or the `PATH`.
    pub(super) fn find(args: &DemoArgs) -> anyhow::Result<Tools> {
        let s3_server = match &args.s3_server {
            Some(path) => path.clone(),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set")?;
                PathBuf::from(home).join(".cache/mftgw-tools/s3s-fs-0.14.1/bin/s3s-fs")
            }
        };
        anyhow::ensure!(
            s3_server.exists(),
            "the S3 server {} is missing: build it with `cargo install s3s-fs@0.14.1 --features \
             binary --locked` (scripts/cluster-demo does) and name it in --s3-server",
            s3_server.display()
        );
        let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .or_else(|| {
                std::env::split_paths(&std::env::var_os("PATH")?)
                    .map(|dir| dir.join("haproxy"))
                    .find(|path| path.exists())
            })
            .context("haproxy is missing: install Debian's haproxy")?;
        Ok(Tools { s3_server, haproxy })
    }
}

/// The ports the system gives connections of their own, if it says.
fn ephemeral_ports() -> Option<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    Some(numbers.next()??..=numbers.next()??)
}

/// Node `index`'s address (counted from 1).
fn node_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + index as u8)
}

/// `ports` cut into `parts` ranges in order, as even as they go.
fn split_range(ports: &RangeInclusive<u16>, parts: usize) -> anyhow::Result<Vec<(u16, u16)>> {
    let count = usize::from(ports.end() - ports.start()) + 1;
    anyhow::ensure!(
        count >= parts,
        "{}-{}: too few passive ports for {parts} nodes",
        ports.start(),
        ports.end()
    );
    let mut first = usize::from(*ports.start());
    Ok((0..parts)
        .map(|part| {
            let size = count / parts + usize::from(part < count % parts);
            let range = (first as u16, (first + size - 1) as u16);
            first += size;
            range
        })
        .collect())
}

/// The layout of a cluster demo in its data directory.
pub(super) struct Layout {
    nodes: usize,
    data_dir: PathBuf,
    s3_port: u16,
    s3_secret: String,
}

impl Layout {
    pub(super) fn new(args: &DemoArgs, data_dir: &Path, tokens: &DemoTokens) -> Layout {
        Layout {
            nodes: args.nodes.unwrap_or(1),
            data_dir: data_dir.to_owned(),
            s3_port: args.s3_port,
            s3_secret: tokens.s3_secret.clone(),
        }
    }

    pub(super) fn nodes(&self) -> usize {
        self.nodes
    }

    /// HAProxy's stats socket, where the demo asks whether it has found every node up.
    fn stats_socket(&self) -> PathBuf {
        self.data_dir.join("haproxy.sock")
    }

    fn s3_root(&self) -> PathBuf {
        self.data_dir.join("s3")
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        self.data_dir.join("nodes").join(format!("node-{index}"))
    }

    /// Node `index`'s config file.
    pub(super) fn node_config_path(&self, index: usize) -> PathBuf {
        self.node_dir(index).join("mftgw.toml")
    }

    /// Node `index`'s config: the single-node demo's `base`, on the node's own address and
    /// share of the passive ranges, advertising the balancer, taking PROXY headers from it
    /// alone, with its blobs in the shared bucket and its own node id and data directory.
    /// The spool, the password key and the PKI stay the demo's own, shared by every node.
    pub(super) fn node_config(&self, base: &Config, index: usize) -> anyhow::Result<Config> {
        let address = IpAddr::V4(node_address(index));
        let on_node = |listen: SocketAddr| SocketAddr::new(address, listen.port());
        let share = |ports: &str| -> anyhow::Result<String> {
            let (first, last) = split_range(&parse_port_range(ports)?, self.nodes)?[index - 1];
            Ok(format!("{first}-{last}"))
        };
        let mut config = base.clone();
        config.data_dir = self.node_dir(index);
        config.transactions.node_id = format!("n{index}");
        config.ftps.listen = on_node(config.ftps.listen);
        config.ftps.passive_ports = share(&base.ftps.passive_ports)?;
        config.ftps.advertised_address = Some(IpAddr::V4(BALANCER));
        if let Some(legacy) = &mut config.legacy {
            legacy.listen = on_node(legacy.listen);
            legacy.passive_ports = share(&legacy.passive_ports)?;
            legacy.advertised_address = Some(IpAddr::V4(BALANCER));
        }
        config.portal.listen = on_node(config.portal.listen);
        config.api.listen = config.api.listen.map(on_node);
        if let Some(emcs) = &mut config.emcs {
            emcs.listen = on_node(emcs.listen);
        }
        config.proxy_protocol = ProxyProtocolConfig {
            from: vec![IpAddr::V4(BALANCER_SOURCE)],
            ..ProxyProtocolConfig::default()
        };
        config.blobs.s3 = Some(S3Config {
            endpoint: Some(format!("http://{BALANCER}:{}", self.s3_port)),
            bucket: BUCKET.into(),
            region: default_region(),
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: self.s3_secret.clone(),
            virtual_hosted_style: false,
            prefix: String::new(),
            part_bytes: default_part_bytes(),
        });
        Ok(config)
    }

    /// HAProxy's configuration: every listener of `base` on the balancer's address, the
    /// control ports, portal and API to any node (round robin, a dead node skipped at its
    /// next check), EMCS by client address (the simulated EMCS keeps each node's messages
    /// to itself), and each node's passive ports to that node alone.
    fn haproxy_config(&self, base: &Config) -> anyhow::Result<String> {
        let mut config = format!(
            "global\n    maxconn 2000\n    stats socket {} mode 600\n\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    \
             timeout server 1h\n    retries 2\n    option redispatch\n\n",
            self.stats_socket().display()
        );
        let server = |index: usize, port: Option<u16>| {
            let port = port.map(|port| format!(":{port}")).unwrap_or_default();
            format!(
                "    server node-{index} {}{port} send-proxy-v2 source {BALANCER_SOURCE}",
                node_address(index)
            )
        };
        let mut to_every_node = |name: &str, port: u16, balance: &str| {
            config.push_str(&format!(
                "listen {name}\n    bind {BALANCER}:{port}\n    balance {balance}\n"
            ));
            for index in 1..=self.nodes {
                config.push_str(&server(index, Some(port)));
                config.push_str(" check inter 1s fall 1 rise 1\n");
            }
            config.push('\n');
        };
        to_every_node("ftps", base.ftps.listen.port(), "roundrobin");
        if let Some(legacy) = &base.legacy {
            to_every_node("legacy", legacy.listen.port(), "roundrobin");
        }
        to_every_node("portal", base.portal.listen.port(), "roundrobin");
        if let Some(api) = base.api.listen {
            to_every_node("api", api.port(), "roundrobin");
        }
        if let Some(emcs) = &base.emcs {
            to_every_node("emcs", emcs.listen.port(), "source");
        }
        let ephemeral = ephemeral_ports();
        let mut passive = |name: &str, ports: &str| -> anyhow::Result<()> {
            let range = parse_port_range(ports)?;
            if let Some(ephemeral) = &ephemeral {
                anyhow::ensure!(
                    range.end() < ephemeral.start() || range.start() > ephemeral.end(),
                    "passive ports {ports} overlap the system's ephemeral ports ({}-{}, \
                     net.ipv4.ip_local_port_range): the balancer cannot bind a port that a \
                     connection uses; choose ports below {}",
                    ephemeral.start(),
                    ephemeral.end(),
                    ephemeral.start()
                );
            }
            for (index, (first, last)) in split_range(&range, self.nodes)?.into_iter().enumerate() {
                config.push_str(&format!(
                    "listen {name}-node-{node}\n    bind {BALANCER}:{first}-{last}\n{}\n\n",
                    server(index + 1, None),
                    node = index + 1
                ));
            }
            Ok(())
        };
        passive("passive", &base.ftps.passive_ports)?;
        if let Some(legacy) = &base.legacy {
            passive("legacy-passive", &legacy.passive_ports)?;
        }
        Ok(config)
    }

    /// Starts the balancer, first: it takes every passive port at once, and a port that a
    /// connection (to the database, say) already uses as its own cannot be bound. Once it
    /// holds them, the system no longer hands them out for connections.
    pub(super) async fn start_balancer(
        &self,
        tools: &Tools,
        base: &Config,
    ) -> anyhow::Result<Balancer> {
        let haproxy_config = self.data_dir.join("haproxy.cfg");
        std::fs::write(&haproxy_config, self.haproxy_config(base)?)?;
        let log = self.data_dir.join("haproxy.log");
        let mut child = spawn(
            Command::new(&tools.haproxy)
                .arg("-db")
                .arg("-f")
                .arg(&haproxy_config),
            &log,
        )?;
        let ftps = SocketAddr::new(BALANCER.into(), base.ftps.listen.port());
        wait_for_start(&mut child, ftps, &log).await?;
        Ok(Balancer {
            child,
            stats: self.stats_socket(),
            log,
        })
    }

    /// Starts the S3 server, then every node, each once its predecessors listen, and waits
    /// until the balancer reaches every node; returns the processes and the nodes for
    /// `demo.json`.
    pub(super) async fn start_nodes(
        &self,
        tools: &Tools,
        base: &Config,
        mut balancer: Balancer,
    ) -> anyhow::Result<(Cluster, Vec<DemoNode>)> {
        let s3_root = self.s3_root();
        std::fs::create_dir_all(s3_root.join(BUCKET))?;
        let s3_log = self.data_dir.join("s3.log");
        let mut s3 = spawn(
            Command::new(&tools.s3_server)
                .args(["--host", &BALANCER.to_string()])
                .args(["--port", &self.s3_port.to_string()])
                .args([
                    "--access-key",
                    S3_ACCESS_KEY,
                    "--secret-key",
                    &self.s3_secret,
                ])
                .arg(&s3_root),
            &s3_log,
        )?;
        let s3_address = SocketAddr::new(BALANCER.into(), self.s3_port);
        wait_for_start(&mut s3, s3_address, &s3_log).await?;

        let binary = std::env::current_exe().context("finding the mftgw binary")?;
        let mut nodes = Vec::new();
        let mut children = Vec::new();
        for index in 1..=self.nodes {
            let config = self.node_config(base, index)?;
            let config_path = self.node_config_path(index);
            let log = self.node_dir(index).join("mftgw.log");
            let child = spawn(
                Command::new(&binary)
                    .arg("--config")
                    .arg(&config_path)
                    .arg("serve"),
                &log,
            )?;
            nodes.push(DemoNode {
                node_id: config.transactions.node_id.clone(),
                ftps: super::Endpoint {
                    host: config.ftps.listen.ip().to_string(),
                    port: config.ftps.listen.port(),
                },
                api_url: config
                    .api
                    .listen
                    .map(|api| format!("https://{api}"))
                    .unwrap_or_default(),
                portal_url: format!("https://{}/", config.portal.listen),
                pid: child.id().context("a node ended at once")?,
                data_dir: config.data_dir.clone(),
                config: config_path,
                log,
            });
            children.push(child);
        }
        for (child, node) in children.iter_mut().zip(&nodes) {
            let listen = SocketAddr::new(node.ftps.host.parse()?, node.ftps.port);
            wait_for_start(child, listen, &node.log).await?;
        }
        balancer.finds_every_node_up().await?;
        Ok((
            Cluster {
                s3,
                nodes: children,
                balancer: balancer.child,
            },
            nodes,
        ))
    }
}

/// HAProxy, started.
pub(super) struct Balancer {
    child: Child,
    stats: PathBuf,
    log: PathBuf,
}

impl Balancer {
    /// Waits until the balancer's checks have found every node up, on every listener it
    /// checks them on.
    async fn finds_every_node_up(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("haproxy ended ({status}); {}", log_tail(&self.log));
            }
            let servers = self.checked_servers().await.unwrap_or_default();
            if !servers.is_empty() && servers.iter().all(|(_, up)| *up) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the balancer did not find every node up within {} s: {servers:?}",
                START_TIMEOUT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every checked server of every listener (`listener/node-i`), and whether it is up, by
    /// HAProxy's `show stat`.
    async fn checked_servers(&self) -> std::io::Result<Vec<(String, bool)>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::UnixStream::connect(&self.stats).await?;
        socket.write_all(b"show stat\n").await?;
        let mut csv = String::new();
        socket.read_to_string(&mut csv).await?;
        // `# pxname,svname,…`: the proxy, the server, and column 18 its status.
        Ok(csv
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let (proxy, server, status) = (fields.first()?, fields.get(1)?, fields.get(17)?);
                server
                    .starts_with("node-")
                    .then(|| (format!("{proxy}/{server}"), status.starts_with("UP")))
            })
            .filter(|(name, _)| !name.contains("passive"))
            .collect())
    }
}

impl Cluster {
    /// Runs until SIGINT or SIGTERM, then stops every process: the nodes first (each shuts
    /// down cleanly on SIGTERM), then the balancer and the S3 server. A node that ended
    /// meanwhile (killed, say) is not started again: `demo.json` says how.
    pub(super) async fn supervise(mut self) -> anyhow::Result<()> {
        crate::serve::shutdown_signal()?.await;
        for node in &self.nodes {
            terminate(node);
        }
        for node in &mut self.nodes {
            let _ = node.wait().await;
        }
        for process in [&mut self.balancer, &mut self.s3] {
            terminate(process);
            let _ = process.wait().await;
        }
        Ok(())
    }
}

/// What the single-node welcome does not say: who serves behind the balancer.
pub(super) fn print_welcome(manifest: &super::DemoManifest) {
    println!(
        "{} gateway nodes serve behind HAProxy on {BALANCER} (every address above), on one \
         PostgreSQL database and an s3s-fs bucket:",
        manifest.nodes.len()
    );
    for node in &manifest.nodes {
        println!(
            "  node {id} (pid {pid}): FTPS {host}:{port}, API {api}, portal {portal}, log {log}\n    \
             start it again: mftgw --config {config} serve",
            id = node.node_id,
            pid = node.pid,
            host = node.ftps.host,
            port = node.ftps.port,
            api = node.api_url,
            portal = node.portal_url,
            log = node.log.display(),
            config = node.config.display(),
        );
    }
    println!(
        "Per node, not shared: the login throttle, session limits, EMCS call spacing and the \
         simulated EMCS (the balancer keeps a client on one node for EMCS).\n"
    );
}

/// Starts `command` with its output in `log`, to end with this process: killed when its
/// handle is dropped, and sent SIGTERM by the kernel if this process dies first.
fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let output =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command
        .spawn()
        .with_context(|| format!("starting {:?}", command.as_std().get_program()))
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: a plain kill(2) of our own child, which we have not reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

/// Waits until `child` listens on `address`; its `log` says why if it ends first or takes
/// too long.
async fn wait_for_start(child: &mut Child, address: SocketAddr, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    let failed = |what: String| anyhow::anyhow!("{what}; {}", log_tail(log));
    while tokio::net::TcpStream::connect(address).await.is_err() {
        if let Some(status) = child.try_wait()? {
            return Err(failed(format!(
                "what was to listen on {address} ended ({status})"
            )));
        }
        if Instant::now() > deadline {
            return Err(failed(format!(
                "nothing listened on {address} within {} s",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The last lines of `log`, named, for an error that says why a process did not start.
fn log_tail(log: &Path) -> String {
    let output = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    format!("{}:\n{}", log.display(), tail.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_ranges_are_shared_out_in_order_and_whole() {
        assert_eq!(
            split_range(&(36000..=39999), 3).unwrap(),
            [(36000, 37333), (37334, 38666), (38667, 39999)]
        );
        assert_eq!(split_range(&(10..=11), 2).unwrap(), [(10, 10), (11, 11)]);
        assert!(split_range(&(10..=11), 3).is_err());
    }
}
