//! The gateway behind a real HAProxy (Debian's `haproxy`) speaking PROXY protocol v2 to it
//! on the control port and on every passive port: the client's address, not the balancer's,
//! is what the data connection's address check and the audit log see; a PROXY header from
//! an address that is no balancer is refused and audited. The HTTPS API answers through the
//! same balancer.
//!
//! Four loopback addresses play the parts: the gateway listens on 127.0.0.1, HAProxy on
//! 127.0.0.2 (which the gateway advertises in its `227` replies), the client connects from
//! 127.0.0.3, and HAProxy connects to the gateway from 127.0.0.4, its one balancer address.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Demo, curl_to, heartbeat_files};

const BALANCER: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";
const BALANCER_SOURCE: &str = "127.0.0.4";

/// HAProxy forwarding `BALANCER:control_port` to the gateway's control port and each passive
/// port of `BALANCER` to the same port of the gateway; killed with the guard.
struct Haproxy {
    child: Child,
    control_port: u16,
    api_port: u16,
}

impl Haproxy {
    fn start(demo: &Demo, passive_ports: &str) -> Haproxy {
        let free = || {
            std::net::TcpListener::bind((BALANCER, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (control_port, api_port) = (free(), free());
        let api: SocketAddr = demo
            .manifest()
            .api
            .url
            .trim_start_matches("https://")
            .parse()
            .unwrap();
        let config = format!(
            "defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend control
    bind {BALANCER}:{control_port}
    default_backend control_nodes

backend control_nodes
    server node1 127.0.0.1:{gateway} send-proxy-v2 source {BALANCER_SOURCE}

frontend passive
    bind {BALANCER}:{passive_ports}
    default_backend passive_nodes

backend passive_nodes
    server node1 127.0.0.1 send-proxy-v2 source {BALANCER_SOURCE}

frontend api
    bind {BALANCER}:{api_port}
    default_backend api_nodes

backend api_nodes
    server node1 {api} send-proxy-v2 source {BALANCER_SOURCE}
",
            gateway = demo.port,
        );
        let path = demo.dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        // Debian puts it in /usr/sbin, which not every user's PATH holds.
        let binary = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .unwrap_or("haproxy");
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(demo.dir.path().join("haproxy.log")).unwrap())
            .spawn()
            .expect("haproxy (scripts/test installs Debian's haproxy)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((BALANCER, control_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not start: {}",
                std::fs::read_to_string(demo.dir.path().join("haproxy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy {
            child,
            control_port,
            api_port,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn behind_haproxy_the_gateway_sees_the_client_and_refuses_headers_from_others() {
    let passive = "42000-42999";
    let demo = Demo::start_with_env(&[
        (
            "MFTGW__PROXY_PROTOCOL__FROM",
            &format!("[\"{BALANCER_SOURCE}\"]"),
        ),
        (
            "MFTGW__FTPS__ADVERTISED_ADDRESS",
            &format!("\"{BALANCER}\""),
        ),
    ]);
    let haproxy = Haproxy::start(&demo, passive);
    // By the server certificate's name, which the balancer's address does not carry.
    let balancer = format!("localhost:{}", haproxy.control_port);
    let resolve = format!("localhost:{}:{BALANCER}", haproxy.control_port);
    let user = demo.user(0);

    // An upload and a listing through the balancer, from the client's own address: both
    // data connections pass the check that they come from the control connection's client.
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let name = format!("proxied{}-hb01.xml", std::process::id());
    let (ok, _, err) = curl_to(
        &demo,
        &balancer,
        &user,
        &format!("/FTPSGW.Heartbeat/{name}"),
        &[
            "--resolve",
            &resolve,
            "--interface",
            CLIENT,
            "-T",
            body.to_str().unwrap(),
        ],
    );
    assert!(ok, "upload through haproxy: {err}");
    let expected = heartbeat_files(&name);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, listing, err) = curl_to(
            &demo,
            &balancer,
            &user,
            "/out/",
            &["--resolve", &resolve, "--interface", CLIENT, "--list-only"],
        );
        assert!(ok, "listing through haproxy: {err}");
        if expected
            .iter()
            .all(|file| listing.lines().any(|line| line == file))
        {
            break;
        }
        assert!(Instant::now() < deadline, "/out holds {listing}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let login = demo.wait_for_audit_where("a login through haproxy", |event| {
        event["action"] == "ftps.login" && event["outcome"] == "allowed"
    });
    assert_eq!(login["peer_ip"], CLIENT, "{login}");
    assert!(
        demo.count_audit(|event| event["peer_ip"] == BALANCER_SOURCE) == 0,
        "the balancer's address was audited"
    );

    // The HTTPS API through the balancer, its PROXY header taken before TLS.
    let api_resolve = format!("localhost:{}:{BALANCER}", haproxy.api_port);
    let (ok, ready, err) = crate::support::run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
            .arg(demo.ca())
            .args(["--resolve", &api_resolve, "--interface", CLIENT])
            .arg(format!("https://localhost:{}/readyz", haproxy.api_port)),
    );
    assert!(ok, "the API through haproxy: {err}");
    assert_eq!(ready, "ready\n");

    // A header straight from the client, which is no balancer: refused and audited.
    let gateway: SocketAddr = format!("127.0.0.1:{}", demo.port).parse().unwrap();
    let said = say_from(
        CLIENT,
        gateway,
        b"PROXY TCP4 203.0.113.9 127.0.0.1 4242 6381\r\n",
    );
    assert!(said.starts_with("220 "), "{said}");
    assert_eq!(
        said.lines().count(),
        1,
        "only the greeting, then closed: {said}"
    );
    let refused = demo.wait_for_audit(
        "ftps.connect",
        "refused",
        Some("proxy_header_from_untrusted_address"),
    );
    assert_eq!(refused["peer_ip"], CLIENT, "{refused}");
}

/// What the server at `to` says until it closes, to a connection from `from` that sends
/// `bytes` first.
fn say_from(from: &str, to: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(to).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let mut said = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut said))
            .await
            .expect("the gateway did not close the connection")
            .unwrap();
        String::from_utf8_lossy(&said).into_owned()
    })
}
