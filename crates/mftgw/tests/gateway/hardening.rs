//! The fixes of the external security review, each driven from outside against a real
//! `mftgw demo`: a flood of refused connections, authorisation withdrawn after login
//! (suspension, deletion, renewal, revocation, lifetime), limits on uploads, folders and
//! queued bytes, the pre-login budget and the open-file limit, the HTTPS listeners under many
//! idle connections, and files made durable at start.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::portal::Portal;
use crate::support::*;
use mftgw_client::{DataConnection, DataOptions, FtpsClient, Reply};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Fails the test if `future` takes longer than `seconds`: nothing here may hang.
async fn within<T>(seconds: u64, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("no answer within {seconds} s"))
}

/// Runs blocking harness calls (`mftgw audit` and its polling) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The sum of every series of the metric `name` on the demo's `/metrics`.
async fn metric_sum(demo: &Demo, name: &str) -> f64 {
    let text = api_get(demo, "/metrics", None).await.1;
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn api_client(demo: &Demo) -> reqwest::Client {
    let ca = std::fs::read(demo.ca()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

/// `GET path` on the demo's HTTPS API, with the bearer `token` if given.
async fn api_get(demo: &Demo, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("{}{path}", demo.manifest().api.url);
    let mut request = api_client(demo).get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `POST path` on the admin API with the demo's operator token.
async fn admin_post(demo: &Demo, path: &str) -> u16 {
    let url = format!("{}{path}", demo.manifest().api.url);
    let token = &demo.manifest().api.admin_token;
    api_client(demo)
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Connects and is refused before login, as `kind` says; waits until the gateway has judged
/// the connection (closed it), so that every connection of a flood is counted.
async fn refused_connection(addr: SocketAddr, kind: usize) {
    let Ok(Ok(mut tcp)) =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
    else {
        return;
    };
    let mut greeting = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut greeting)).await;
    let attempt = async {
        if kind.is_multiple_of(2) {
            // Implicit TLS: a ClientHello's first byte where a command belongs.
            tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
                .await?;
        } else {
            // AUTH TLS, then something that is no ClientHello.
            tcp.write_all(b"AUTH TLS\r\n").await?;
            let mut reply = [0u8; 64];
            let _ = tcp.read(&mut reply).await?;
            tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        }
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), attempt).await;
}

/// Review item 1: thousands of refused connections before login (implicit TLS, garbage for a
/// ClientHello, and, past the address's connection rate, 421 at accept) add a bounded number
/// of audit rows and are all counted in the metrics; a data-connection theft attempted during
/// the flood is recorded; the write-ahead log is truncated again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_refused_connections_is_aggregated_and_a_theft_during_it_is_recorded() {
    const FLOOD: usize = 3_000;
    const AT_ONCE: usize = 64;
    let demo = Demo::start_with_env(&[("MFTGW__STORE__CHECKPOINT_SECS", "1")]);
    let users = demo.users();
    let (victim, thief) = (&users[0], &users[1]);
    // Logged in before the flood: its address is about to exceed its connection rate.
    let mut session = demo.login(victim).await;
    let rows_before = blocking(|| demo.audit().len());

    let done = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (addr, done) = (demo.addr(), Arc::clone(&done));
        tokio::spawn(async move {
            let next = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    let (next, done) = (Arc::clone(&next), Arc::clone(&done));
                    tokio::spawn(async move {
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= FLOOD {
                                return;
                            }
                            refused_connection(addr, n).await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
        })
    };

    // Well into the flood, another company's valid certificate tries the victim's transfer.
    while done.load(Ordering::Relaxed) < FLOOD / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = within(10, session.epsv()).await.unwrap();
    let foreign = DataOptions {
        tls: Some(demo.tls(thief)),
        ..Default::default()
    };
    if let Ok(DataConnection::Tls(mut stolen)) = within(10, session.open_data(addr, &foreign)).await
    {
        let mut bytes = Vec::new();
        let _ = within(10, stolen.read_to_end(&mut bytes)).await;
        assert!(bytes.is_empty(), "the thief received data");
    }
    let data = within(10, session.open_data(addr, &DataOptions::default()))
        .await
        .unwrap();
    assert_eq!(within(10, session.command("LIST")).await.unwrap().code, 150);
    let DataConnection::Tls(mut data) = data else {
        unreachable!()
    };
    let mut listing = Vec::new();
    within(10, data.read_to_end(&mut listing)).await.unwrap();
    assert_eq!(within(10, session.read_reply()).await.unwrap().code, 226);
    within(300, flood).await.unwrap();

    // Every refused connection is counted; the audit log holds a handful of rows for them.
    let refused = metric_sum(&demo, "mftgw_refused_connections_total").await;
    assert!(
        refused >= FLOOD as f64,
        "{refused} of {FLOOD} refusals counted"
    );
    assert_eq!(
        metric_sum(&demo, "mftgw_audit_events_dropped_total").await,
        0.0
    );
    let repeated = blocking(|| {
        demo.wait_for_audit_where("a row counting repeated rate refusals", |e| {
            e["action"] == "ftps.connect"
                && e["reason"] == "connection_rate_exceeded"
                && e["detail"]["count"].as_u64().is_some_and(|n| n > 1)
        })
    });
    assert_eq!(repeated["peer_ip"], "127.0.0.1", "{repeated}");
    let theft = blocking(|| {
        demo.wait_for_audit_where("the theft attempt", |e| {
            e["action"] == "ftps.data"
                && e["reason"] == "data_connection_certificate_mismatch"
                && e["username"] == victim.username.as_str()
        })
    });
    assert_eq!(theft["outcome"], "refused");
    // Until every interval the flood spanned has been written, the rows account for fewer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (audit, counted) = loop {
        let audit = blocking(|| demo.audit());
        let counted: u64 = audit[rows_before..]
            .iter()
            .filter(|e| e["outcome"] == "refused")
            .map(|e| e["detail"]["count"].as_u64().unwrap_or(1))
            .sum();
        if counted >= FLOOD as u64 || Instant::now() > deadline {
            break (audit, counted);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        counted >= FLOOD as u64,
        "the rows account for {counted} of {FLOOD} refusals"
    );
    let added = audit.len() - rows_before;
    assert!(
        added <= 100,
        "{added} audit rows for {FLOOD} refused connections:\n{:#?}",
        &audit[rows_before..]
    );

    // The write-ahead log goes back to nothing at the next checkpoints.
    let wal = demo.data_dir().join("mftgw.sqlite-wal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the WAL stays at {} bytes",
            std::fs::metadata(&wal).unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Review item 1: the audit log has a retention: past it, events are archived (JSON lines,
/// as `mftgw audit` prints them) and only then removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_past_the_retention_are_archived_then_removed() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__AUDIT__RETENTION_DAYS", "0"),
        ("MFTGW__AUDIT__SWEEP_SECS", "1"),
    ]);
    let user = demo.user(0);
    demo.login(&user).await;
    let archive = demo.data_dir().join("audit-archive");
    let archived_login = |archive: &std::path::Path| -> Option<Value> {
        std::fs::read_dir(archive)
            .ok()?
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "jsonl"))
            .flat_map(|entry| {
                std::fs::read_to_string(entry.path())
                    .unwrap_or_default()
                    .lines()
                    .map(|line| serde_json::from_str::<Value>(line).unwrap())
                    .collect::<Vec<_>>()
            })
            .find(|e| {
                e["action"] == "ftps.login"
                    && e["outcome"] == "allowed"
                    && e["username"] == user.username.as_str()
            })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let archived = loop {
        if let Some(event) = archived_login(&archive) {
            break event;
        }
        assert!(Instant::now() < deadline, "the login was never archived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let still_there = blocking(|| demo.audit())
        .iter()
        .any(|e| e["id"] == archived["id"]);
    assert!(!still_there, "an archived event is still in the audit log");
}

/// Waits for the reply the gateway sends on its own when it ends a session (`421`), after
/// any others before it.
async fn ended_by_gateway(client: &mut FtpsClient) -> Reply {
    loop {
        let reply = within(20, client.read_reply()).await.unwrap();
        if reply.code == 421 {
            return reply;
        }
    }
}

/// Waits for the audit record of `action` with `reason` about `username`.
fn audited(demo: &Demo, action: &str, reason: &str, username: &str) -> Value {
    demo.wait_for_audit_where(&format!("{action}/{reason} of {username}"), |e| {
        e["action"] == action && e["reason"] == reason && e["username"] == username
    })
}

/// Waits for the record of the gateway ending `username`'s session for `reason`.
fn session_ended(demo: &Demo, username: &str, reason: &str) -> Value {
    audited(demo, "ftps.session", reason, username)
}

/// Review item 2: an operator's suspension through the admin API ends an idle session, and
/// one through the CLI (another process) cuts a running upload, which stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_ends_live_sessions_and_cuts_a_running_upload() {
    let demo = Demo::start();
    let users = demo.users();
    let idle_user = &users[3];
    let mut idle = demo.login(idle_user).await;
    let path = format!("/v1/admin/users/{}/suspend", idle_user.username);
    assert_eq!(admin_post(&demo, &path).await, 200);
    let reply = ended_by_gateway(&mut idle).await;
    assert!(reply.text.contains("log in again"), "{reply}");
    blocking(|| session_ended(&demo, &idle_user.username, "suspended"));
    assert!(demo.try_login(idle_user).await.is_err());

    // Once the gateway has ended the session, the upload's clean end comes too late: the
    // transfer was cut, and nothing is stored.
    let uploader = &users[2];
    let mut client = demo.login(uploader).await;
    let mut data = within(10, client.start_transfer("STOR /FTPSGW.Heartbeat/cut.xml"))
        .await
        .unwrap();
    data.write_all(b"<half-of-a-declaration").await.unwrap();
    data.flush().await.unwrap();
    blocking(|| demo.admin(&["user", "suspend", &uploader.username]));
    blocking(|| session_ended(&demo, &uploader.username, "suspended"));
    let _ = data.write_all(b"/>").await;
    let _ = data.shutdown().await;
    let reply = within(20, client.read_reply()).await.unwrap();
    assert_eq!(reply.code, 426, "{reply}");
    assert_eq!(ended_by_gateway(&mut client).await.code, 421);
    assert!(
        demo.transactions(&uploader.username).is_empty(),
        "the upload of an ended session became a transaction"
    );
}

/// Review item 2: deleting a user and renewing a certificate end the sessions concerned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_and_a_renewal_end_the_sessions_they_concern() {
    let demo = Demo::start();
    let users = demo.users();
    let deleted = &users[2];
    let mut session = demo.login(deleted).await;
    blocking(|| demo.admin(&["user", "delete", &deleted.username]));
    ended_by_gateway(&mut session).await;
    blocking(|| session_ended(&demo, &deleted.username, "deleted"));

    // The MOCES user renews: the session of the replaced certificate ends, the new one works.
    let moces = &users[0];
    let mut old = demo.login(moces).await;
    let renewed = demo.issue_certificate("moces-renewed", "moces", "19552101", "60134540");
    let printed =
        blocking(|| demo.admin(&["user", "register", "--cert", renewed.cert.to_str().unwrap()]));
    assert!(printed.contains("password is unchanged"), "{printed}");
    ended_by_gateway(&mut old).await;
    blocking(|| session_ended(&demo, &moces.username, "replaced_certificate"));
    let renewed = DemoUser {
        password: moces.password.clone(),
        ..renewed
    };
    demo.login(&renewed).await;
}

/// Review item 2: after a certificate is revoked and the CRLs reloaded (SIGHUP), its live
/// session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_reload_ends_the_session_of_a_revoked_certificate() {
    let demo = Demo::start();
    let user = demo.user(1);
    let mut session = demo.login(&user).await;
    demo.revoke_in_pki("voces-renewed");
    demo.signal("HUP");
    ended_by_gateway(&mut session).await;
    blocking(|| session_ended(&demo, &user.username, "certificate_revoked"));
}

/// Review item 2: however busy, a session ends at its configured lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_maximum_lifetime() {
    let demo = Demo::start_with_env(&[("MFTGW__FTPS__MAX_SESSION_LIFETIME_SECS", "2")]);
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    let reply = loop {
        let reply = within(10, client.command("NOOP")).await.unwrap();
        if reply.code != 200 {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reply.code, 421, "{reply}");
    assert!(reply.text.contains("lifetime"), "{reply}");
    blocking(|| audited(&demo, "ftps.logout", "lifetime_exceeded", &user.username));
}

/// Review item 2: a suspension ends the user's portal sessions too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_ends_the_users_portal_sessions() {
    let demo = Demo::start();
    let user = demo.user(0);
    let mut portal = Portal::new(&demo, &user);
    portal.first_login("Portal-Password-1").await;
    portal
        .get("/")
        .await
        .assert(reqwest::StatusCode::OK, "registration-state");
    blocking(|| demo.admin(&["user", "suspend", &user.username]));
    let page = portal.get("/").await;
    assert!(
        page.body.contains("id=\"password\"") && !page.body.contains("registration-state"),
        "the session outlived the suspension:\n{}",
        page.body
    );
    blocking(|| audited(&demo, "portal.session_ended", "suspended", &user.username));
}

/// Review item 9: the largest upload, the bytes a user may have waiting for delivery, and the
/// transaction folders of a session are limited, each with a clear `552`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_queued_bytes_and_folders_are_limited_with_clear_replies() {
    let down = "[{ name = \"down\", kind = \"simulated\", behaviour = \"down\", services = [\"Manifest.MidlertidigOpbevaringOpret\"] }]";
    let demo = Demo::start_with_env(&[
        ("MFTGW__TRANSACTIONS__MAX_UPLOAD_BYTES", "1000"),
        ("MFTGW__TRANSACTIONS__USER_PENDING_QUOTA_BYTES", "1500"),
        ("MFTGW__FTPS__MAX_TRANSACTION_FOLDERS", "3"),
        ("MFTGW__DELIVERY__BACKENDS", down),
    ]);
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    let manifest = "/Manifest.MidlertidigOpbevaringOpret";

    let reply = within(
        10,
        client.upload(&format!("{manifest}/big.xml"), &[b'x'; 1001]),
    )
    .await
    .unwrap();
    assert_eq!(reply.code, 552, "{reply}");
    assert!(reply.text.contains("1000 bytes"), "{reply}");
    // An upload under way in one session counts against the quota of the user's others.
    let mut parallel = demo.login(&user).await;
    let mut under_way = within(
        10,
        parallel.start_transfer(&format!("STOR {manifest}/a.xml")),
    )
    .await
    .unwrap();
    under_way.write_all(&[b'x'; 700]).await.unwrap();
    under_way.flush().await.unwrap();
    // Time for the gateway to take the bytes in; too little makes the refusal below fail.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reply = within(
        10,
        client.upload(&format!("{manifest}/b.xml"), &[b'x'; 900]),
    )
    .await
    .unwrap();
    assert_eq!(reply.code, 552, "{reply}");
    assert!(reply.text.contains("quota"), "{reply}");
    under_way.shutdown().await.unwrap();
    let reply = within(10, parallel.read_reply()).await.unwrap();
    assert_eq!(reply.code, 226, "{reply}");
    let reply = within(
        10,
        client.upload(&format!("{manifest}/b.xml"), &[b'x'; 700]),
    )
    .await
    .unwrap();
    assert_eq!(reply.code, 226, "{reply}");
    // 1400 bytes wait for the backend that is down; 200 more would pass 1500.
    let reply = within(
        10,
        client.upload(&format!("{manifest}/c.xml"), &[b'x'; 200]),
    )
    .await
    .unwrap();
    assert_eq!(reply.code, 552, "{reply}");
    assert!(reply.text.contains("quota"), "{reply}");
    let names: Vec<String> = demo
        .transactions(&user.username)
        .iter()
        .map(|t| t["ftp_transaction_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the uploads within the limits: {names:?}"
    );

    for n in 0..3 {
        let reply = within(10, client.command(&format!("MKD /FTPSGW.Heartbeat/tx-{n}")))
            .await
            .unwrap();
        assert_eq!(reply.code, 257, "{reply}");
    }
    let reply = within(10, client.command("MKD /FTPSGW.Heartbeat/tx-3"))
        .await
        .unwrap();
    assert_eq!(reply.code, 552, "{reply}");
    assert!(reply.text.contains("At most 3"), "{reply}");
    // Using a folder frees its place.
    let reply = within(10, client.command("MKD /FTPSGW.Heartbeat/tx-0/in"))
        .await
        .unwrap();
    assert_eq!(reply.code, 257, "{reply}");
    let reply = within(
        10,
        client.upload("/FTPSGW.Heartbeat/tx-0/in/ping.xml", b"<ping/>"),
    )
    .await
    .unwrap();
    assert_eq!(reply.code, 226, "{reply}");
    let reply = within(10, client.command("MKD /FTPSGW.Heartbeat/tx-3"))
        .await
        .unwrap();
    assert_eq!(reply.code, 257, "{reply}");
}

/// Review item 10: connections that have not logged in have a budget of their own, so
/// unauthenticated clients cannot hold every slot; the open-file limit is raised at start,
/// and sessions are clamped (loudly) to what it carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_file_limit_is_raised_and_pre_login_connections_have_their_own_budget() {
    let demo = Demo::start_launched(
        &[("MFTGW__FTPS__MAX_PRE_LOGIN_SESSIONS", "4")],
        |_| {},
        &["prlimit", "--nofile=1024:4096", "--"],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", demo.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    assert!(
        open_files
            .split_whitespace()
            .filter(|word| *word == "4096")
            .count()
            == 2,
        "the soft limit was not raised: {open_files}"
    );
    assert!(
        demo.log().contains("clamped"),
        "4096 files cannot carry 20,000 sessions, and the log does not say so:\n{}",
        demo.log()
    );

    let user = demo.user(0);
    let mut session = demo.login(&user).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let (client, greeting) = within(10, FtpsClient::connect(demo.addr())).await.unwrap();
        assert_eq!(greeting.code, 220);
        idle.push(client);
    }
    let mut turned_away = within(10, TcpStream::connect(demo.addr())).await.unwrap();
    let mut answer = String::new();
    within(10, turned_away.read_to_string(&mut answer))
        .await
        .unwrap();
    assert!(answer.starts_with("421 "), "{answer:?}");
    // The logged-in session is unaffected.
    assert!(nlst(&mut session, "/").await.contains(&"out".to_string()));
    blocking(|| {
        demo.wait_for_audit(
            "ftps.connect",
            "refused",
            Some("too_many_connections_before_login"),
        )
    });
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo.try_login(&user).await.is_err() {
        assert!(Instant::now() < deadline, "the budget was not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `count` TLS connections to `addr` from `source` and holds them without a request.
async fn idle_tls_connections(
    addr: SocketAddr,
    source: IpAddr,
    count: usize,
    tls: Arc<rustls::ClientConfig>,
) -> Vec<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut held = Vec::new();
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let Ok(Ok(tcp)) = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await
        else {
            continue;
        };
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls));
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await
        {
            held.push(stream);
        }
    }
    held
}

/// The address of the demo's HTTPS API.
fn api_address(demo: &Demo) -> SocketAddr {
    demo.manifest()
        .api
        .url
        .trim_start_matches("https://")
        .parse()
        .unwrap()
}

/// Holds `per_address` idle TLS connections to the demo's API from each of `sources`;
/// returns the ones the listener took.
async fn hold_from(
    demo: &Demo,
    sources: impl Iterator<Item = IpAddr>,
    per_address: usize,
) -> Vec<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls =
        mftgw_client::client_config(&demo.ca(), None, mftgw_client::TlsVersions::Default).unwrap();
    let addr = api_address(demo);
    let attackers: Vec<_> = sources
        .map(|source| {
            tokio::spawn(idle_tls_connections(
                addr,
                source,
                per_address,
                Arc::clone(&tls),
            ))
        })
        .collect();
    let mut held = Vec::new();
    for attacker in attackers {
        held.extend(attacker.await.unwrap());
    }
    held
}

/// Review item 11: sixteen addresses holding TLS connections open without a request, 64
/// each (once more than the listener takes), cannot keep anyone else off the HTTPS API:
/// connections are limited per address ...
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_from_a_few_addresses_do_not_starve_the_https_listeners() {
    let demo = Demo::start();
    let sources = (1..=16u8).map(|n| IpAddr::from([127, 10 + n, 0, 1]));
    let held = hold_from(&demo, sources, 64).await;
    assert!(
        held.len() <= 16 * 32,
        "{} idle connections were taken from 16 addresses",
        held.len()
    );
    let (status, body) = within(10, api_get(&demo, "/healthz", None)).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

/// ... and per network: sixteen addresses of one /24 get that network's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_from_one_network_get_only_its_share_of_the_https_listeners() {
    let demo = Demo::start();
    let sources = (1..=16u8).map(|n| IpAddr::from([127, 9, 0, n]));
    let held = hold_from(&demo, sources, 16).await;
    assert!(
        held.len() <= 128,
        "{} idle connections from one /24",
        held.len()
    );
    let (status, body) = within(10, api_get(&demo, "/healthz", None)).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

/// Review item 14: the password key and `demo.json` reach the disk with the directory entry
/// that names them (seen in the system calls of a first start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_key_and_demo_json_are_synced_with_their_directory() {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let trace_path = trace.path().to_str().unwrap().to_string();
    let demo = Demo::start_launched(
        &[],
        |_| {},
        &[
            // The main thread writes both files, before the runtime serves anything.
            "strace",
            "-y",
            "-qq",
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2",
            "-o",
            &trace_path,
            "--",
        ],
    );
    let data_dir = std::fs::canonicalize(demo.data_dir()).unwrap();
    let data_dir = data_dir.to_str().unwrap();
    let (key, directory) = (
        format!("<{data_dir}/gateway-password.key>"),
        format!("<{data_dir}>"),
    );
    let manifest = format!("{data_dir}/demo.json\"");
    // The key is synced, then its directory; demo.json is renamed into place, then its
    // directory is synced. strace may write its last lines a little later.
    let in_order = |calls: &str| {
        let lines: Vec<&str> = calls.lines().collect();
        let after = |from: usize, wanted: &dyn Fn(&str) -> bool| {
            lines[from..]
                .iter()
                .position(|line| wanted(line))
                .map(|offset| from + offset)
        };
        let dir_synced = |line: &str| line.contains("fsync(") && line.contains(&directory);
        let key_synced = after(0, &|line| line.contains("fsync(") && line.contains(&key))?;
        after(key_synced, &dir_synced)?;
        let renamed = after(0, &|line| {
            line.contains("rename") && line.contains(&manifest)
        })?;
        after(renamed, &dir_synced)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let calls = std::fs::read_to_string(&trace_path).unwrap();
        if in_order(&calls).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key or demo.json is not synced with its directory:\n{calls}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
