//! Every refusal of the real `mftgw demo` gateway, seen from both sides: what the client gets
//! (a failed handshake, `530`, a `4xx`/`5xx` reply, a closed connection) and what the operator
//! reads in the audit log (the precise reason, the client IP and, where a certificate was
//! presented, its SHA-256 fingerprint).

use std::future::Future;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::support::*;
use mftgw_client::{DataConnection, DataOptions, FtpsClient, TlsVersions};
use serde_json::Value;
use tokio::io::AsyncReadExt;

const CLIENT_IP: &str = "127.0.0.1";

/// What the gateway audits when a client offers only TLS 1.0 or 1.1.
const OLD_TLS_REASON: &str = "tls_version_not_supported";

static SHARED: Mutex<Weak<Demo>> = Mutex::new(Weak::new());

/// One demo instance for the cases that cannot disturb one another. It lives while a test holds
/// it and is stopped when the last one lets go. All cases come from 127.0.0.1, so the login
/// throttle is configured out of reach: the throttle has its own test and instance.
fn shared_demo() -> Arc<Demo> {
    let mut slot = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(demo) = slot.upgrade() {
        return demo;
    }
    let demo = Arc::new(Demo::start_with_env(&[
        ("MFTGW__LOGIN__FREE_FAILURES", "1000"),
        ("MFTGW__LOGIN__BLOCK_AFTER", "1000"),
    ]));
    *slot = Arc::downgrade(&demo);
    demo
}

/// Fails the test if `future` takes longer than ten seconds: a refusal must never hang.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("no answer within 10 s")
}

/// Runs blocking harness calls (`mftgw audit` and its polling) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn entry_is(entry: &Value, action: &str, outcome: &str, reason: &str) -> bool {
    entry["action"] == action
        && entry["outcome"] == outcome
        && entry["reason"] == reason
        && entry["peer_ip"] == CLIENT_IP
}

async fn connect(demo: &Demo) -> FtpsClient {
    let (client, greeting) = within(FtpsClient::connect(demo.addr())).await.unwrap();
    assert_eq!(greeting.code, 220, "{greeting}");
    client
}

/// `AUTH TLS` with `tls`; true if the handshake failed. Under TLS 1.3 the client finishes its
/// side before the server has judged the certificate, so the refusal shows on the next read.
async fn handshake_refused(demo: &Demo, tls: Arc<rustls::ClientConfig>) -> bool {
    let mut client = connect(demo).await;
    let outcome = match within(client.auth_tls(tls)).await {
        Ok(()) => within(client.command("NOOP")).await.map(|_| ()),
        Err(error) => Err(error),
    };
    outcome.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_refused_in_the_handshake_are_audited_with_reason_and_fingerprint() {
    let demo = shared_demo();

    let bare = mftgw_client::client_config(&demo.ca(), None, TlsVersions::Default).unwrap();
    assert!(
        handshake_refused(&demo, bare).await,
        "a handshake without a client certificate succeeded"
    );
    let entry = blocking(|| {
        demo.wait_for_audit_where("ftps.tls/refused/no_client_certificate", |e| {
            entry_is(e, "ftps.tls", "refused", "no_client_certificate")
        })
    });
    assert!(entry["cert_fingerprint"].is_null(), "{entry}");

    for (name, reason) in [
        ("untrusted", "certificate_untrusted_issuer"),
        ("expired", "certificate_expired"),
        ("revoked", "certificate_revoked"),
    ] {
        let cert = demo.certificate(name);
        let fingerprint = fingerprint_of(&cert.cert);
        assert!(
            handshake_refused(&demo, demo.tls(&cert)).await,
            "the {name} certificate completed a handshake"
        );
        blocking(|| {
            demo.wait_for_audit_where(&format!("ftps.tls/refused/{reason} for {name}"), |e| {
                entry_is(e, "ftps.tls", "refused", reason)
                    && e["cert_fingerprint"] == fingerprint.as_str()
            })
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refusals_answer_the_same_530_and_audit_the_precise_reason() {
    let demo = shared_demo();
    let users = demo.users();
    let moces = &users[0];
    let other = &users[1];

    // 13. A successful login is audited with username, IP and fingerprint.
    let mut client = within(FtpsClient::login(
        demo.addr(),
        demo.tls(moces),
        &moces.username,
        &moces.password,
    ))
    .await
    .unwrap();
    assert_eq!(within(client.command("PWD")).await.unwrap().code, 257);
    let moces_fingerprint = fingerprint_of(&moces.cert);
    let allowed = blocking(|| {
        demo.wait_for_audit_where("ftps.login/allowed for moces", |e| {
            e["action"] == "ftps.login"
                && e["outcome"] == "allowed"
                && e["username"] == moces.username.as_str()
        })
    });
    assert_eq!(allowed["peer_ip"], CLIENT_IP, "{allowed}");
    assert_eq!(allowed["cert_fingerprint"], moces_fingerprint.as_str());
    assert!(allowed["reason"].is_null(), "{allowed}");
    assert_eq!(within(client.command("QUIT")).await.unwrap().code, 221);

    let foces = demo.certificate("foces");
    let personal = demo.certificate("personal");
    let unregistered = demo.certificate("unregistered");
    let replaced = demo.certificate("replaced");
    let suspended = demo.certificate("suspended");
    let cases: [(&DemoUser, String, String, &str); 7] = [
        // 6, 7: the username they would have does not exist; USER is anything.
        (
            &foces,
            foces.username.clone(),
            foces.password.clone(),
            "foces_unsupported",
        ),
        (
            &personal,
            personal.username.clone(),
            personal.password.clone(),
            "personal_certificate_unsupported",
        ),
        // 8. moces's certificate, another user's name and correct password.
        (
            moces,
            other.username.clone(),
            other.password.clone(),
            "username_mismatch",
        ),
        // 9.
        (
            moces,
            moces.username.clone(),
            format!("{}x", moces.password),
            "wrong_password",
        ),
        // 10. The name the certificate derives, but it was never registered.
        (
            &unregistered,
            username_of(&unregistered.cert),
            "K7mPq2xYz9RtW4vN8bHc3dFg".to_string(),
            "unknown_certificate",
        ),
        // 11. The user's old certificate after a renewal, with the (unchanged) password.
        (
            &replaced,
            replaced.username.clone(),
            replaced.password.clone(),
            "replaced_certificate",
        ),
        // 12. Correct password, suspended by an operator.
        (
            &suspended,
            suspended.username.clone(),
            suspended.password.clone(),
            "suspended",
        ),
    ];

    let mut answers = Vec::new();
    for (holder, username, password, reason) in &cases {
        let mut client = connect(&demo).await;
        within(client.auth_tls(demo.tls(holder))).await.unwrap();
        let user = within(client.command(&format!("USER {username}")))
            .await
            .unwrap();
        assert_eq!(user.code, 331, "{reason}: {user}");
        let pass = within(client.command(&format!("PASS {password}")))
            .await
            .unwrap();
        assert_eq!(pass.code, 530, "{reason}: {pass}");
        // Not logged in after all.
        assert_eq!(
            within(client.command("PWD")).await.unwrap().code,
            530,
            "{reason}"
        );
        answers.push(pass);

        let fingerprint = fingerprint_of(&holder.cert);
        blocking(|| {
            demo.wait_for_audit_where(&format!("ftps.login/refused/{reason}"), |e| {
                entry_is(e, "ftps.login", "refused", reason)
                    && e["username"] == username.as_str()
                    && e["cert_fingerprint"] == fingerprint.as_str()
            })
        });
    }
    // The client learns nothing about the reason.
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "refusals differ: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_after_start_up_is_refused_after_sighup() {
    let demo = Demo::start_with_env(&[("MFTGW__TLS__CRL_REFRESH_SECS", "3600")]);
    let moces = demo.user(0);
    let fingerprint = fingerprint_of(&moces.cert);
    let login = || {
        within(FtpsClient::login(
            demo.addr(),
            demo.tls(&moces),
            &moces.username,
            &moces.password,
        ))
    };
    login().await.unwrap();

    demo.revoke_in_pki("moces");
    // Until the gateway reloads its CRLs, the old CRL is in force.
    login()
        .await
        .expect("revocation took effect before the CRL reload");

    demo.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handshake_refused(&demo, demo.tls(&moces)).await {
        assert!(
            Instant::now() < deadline,
            "moces still completes handshakes 10 s after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocking(|| {
        demo.wait_for_audit_where("ftps.tls/refused/certificate_revoked for moces", |e| {
            entry_is(e, "ftps.tls", "refused", "certificate_revoked")
                && e["cert_fingerprint"] == fingerprint.as_str()
        })
    });
    assert!(login().await.is_err());
}

/// curl, lftp and rustls keep a TLS session cache between connections. A client that logged in
/// before its certificate was revoked must not get back in by resuming that earlier session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_cannot_log_in_by_resuming_an_earlier_tls_session() {
    let demo = Demo::start();
    let moces = demo.user(0);
    // One client configuration throughout, so its session cache is kept, as those clients do.
    let tls = demo.tls(&moces);
    let mut client = within(FtpsClient::login(
        demo.addr(),
        Arc::clone(&tls),
        &moces.username,
        &moces.password,
    ))
    .await
    .unwrap();
    // The session (and its tickets) is established; use it a little, then leave.
    assert_eq!(within(client.command("NOOP")).await.unwrap().code, 200);
    assert_eq!(within(client.command("QUIT")).await.unwrap().code, 221);

    demo.revoke_in_pki("moces");
    demo.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handshake_refused(&demo, demo.tls(&moces)).await {
        assert!(Instant::now() < deadline, "revocation not in force");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let resumed = within(FtpsClient::login(
        demo.addr(),
        tls,
        &moces.username,
        &moces.password,
    ))
    .await;
    assert!(
        resumed.is_err(),
        "a revoked certificate logged in by resuming an earlier TLS session"
    );
}

struct SClient {
    success: bool,
    output: String,
}

/// `openssl s_client -starttls ftp` with `version` (e.g. `-tls1_1`), stdin closed, at most 20 s.
fn s_client(demo: &Demo, user: &DemoUser, version: &str) -> SClient {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &demo.addr().to_string()])
        .args(["-starttls", "ftp", version, "-cipher", "DEFAULT@SECLEVEL=0"])
        .arg("-cert")
        .arg(&user.cert)
        .arg("-cert_chain")
        .arg(&user.cert)
        .arg("-key")
        .arg(&user.key)
        .arg("-CAfile")
        .arg(demo.ca())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed for this test");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("openssl s_client {version} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    SClient {
        success: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn tls_1_0_and_1_1_offers_reach_the_gateway_and_are_refused() {
    let demo = shared_demo();
    let moces = demo.user(0);

    // The same invocation with TLS 1.2 works, so the refusals below are about the version.
    let modern = s_client(&demo, &moces, "-tls1_2");
    assert!(
        modern.success && modern.output.contains("Protocol  : TLSv1.2"),
        "openssl with TLS 1.2:\n{}",
        modern.output
    );

    for version in ["-tls1_1", "-tls1"] {
        let is_old_tls_refusal = |e: &Value| entry_is(e, "ftps.tls", "refused", OLD_TLS_REASON);
        let before = demo.count_audit(is_old_tls_refusal);
        let old = s_client(&demo, &moces, version);
        assert!(
            !old.success,
            "{version} handshake succeeded:\n{}",
            old.output
        );
        // The client did send its ClientHello (it did not refuse itself)...
        assert!(
            !old.output.contains("no protocols available"),
            "openssl refused to offer {version} itself:\n{}",
            old.output
        );
        assert!(
            old.output
                .lines()
                .filter(|line| line.contains("Cipher is"))
                .all(|line| line.contains("Cipher is (NONE)")),
            "{version} negotiated a cipher:\n{}",
            old.output
        );
        // ...and the gateway received and refused it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while demo.count_audit(is_old_tls_refusal) != before + 1 {
            assert!(
                Instant::now() < deadline,
                "no ftps.tls refusal audited for {version}; log has:\n{:#?}",
                demo.audit()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_before_auth_tls_get_530() {
    let demo = shared_demo();
    let moces = demo.user(0);
    let mut client = connect(&demo).await;
    for command in [
        format!("USER {}", moces.username),
        format!("PASS {}", moces.password),
        "LIST".to_string(),
        "PWD".to_string(),
        "PBSZ 0".to_string(),
    ] {
        let reply = within(client.command(&command)).await.unwrap();
        assert_eq!(reply.code, 530, "{command}: {reply}");
    }
    // The clear-text USER/PASS counted for nothing: after AUTH TLS, PASS alone is out of order.
    within(client.auth_tls(demo.tls(&moces))).await.unwrap();
    assert_eq!(
        within(client.command(&format!("PASS {}", moces.password)))
            .await
            .unwrap()
            .code,
        503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prot_c_is_refused_and_no_data_channel_opens_without_prot_p() {
    let demo = shared_demo();
    let moces = demo.user(0);
    let mut client = connect(&demo).await;
    within(client.auth_tls(demo.tls(&moces))).await.unwrap();
    within(client.command(&format!("USER {}", moces.username)))
        .await
        .unwrap();
    let pass = within(client.command(&format!("PASS {}", moces.password)))
        .await
        .unwrap();
    assert_eq!(pass.code, 230, "{pass}");
    assert_eq!(within(client.command("PBSZ 0")).await.unwrap().code, 200);
    assert_eq!(within(client.command("PROT C")).await.unwrap().code, 534);
    for passive in ["EPSV", "PASV"] {
        let reply = within(client.command(passive)).await.unwrap();
        assert_eq!(reply.code, 521, "{passive}: {reply}");
        let reply = within(client.command("STOR /FTPSGW.Heartbeat/plain.xml"))
            .await
            .unwrap();
        assert_eq!(reply.code, 521, "STOR after {passive}: {reply}");
    }
    assert_eq!(within(client.command("NOOP")).await.unwrap().code, 200);
    // With PROT P the same session can open a data channel.
    assert_eq!(within(client.command("PROT P")).await.unwrap().code, 200);
    within(client.epsv()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_the_same_address_can_neither_take_nor_cancel_a_transfer() {
    let demo = shared_demo();
    let users = demo.users();
    let (moces, other) = (&users[0], &users[1]);
    let mut client = within(FtpsClient::login(
        demo.addr(),
        demo.tls(moces),
        &moces.username,
        &moces.password,
    ))
    .await
    .unwrap();

    // 17. Another valid, registered certificate on the data connection: it gets nothing,
    // and the real client's connection, which comes after, gets the listing.
    let addr = within(client.epsv()).await.unwrap();
    let foreign = DataOptions {
        tls: Some(demo.tls(other)),
        ..Default::default()
    };
    let stolen = within(client.open_data(addr, &foreign)).await;
    if let Ok(DataConnection::Tls(mut stream)) = stolen {
        let mut bytes = Vec::new();
        let _ = within(stream.read_to_end(&mut bytes)).await;
        assert!(bytes.is_empty(), "a foreign certificate received a listing");
    }
    blocking(|| {
        demo.wait_for_audit_where(
            "ftps.data/refused/data_connection_certificate_mismatch",
            |e| {
                entry_is(
                    e,
                    "ftps.data",
                    "refused",
                    "data_connection_certificate_mismatch",
                ) && e["username"] == moces.username.as_str()
            },
        )
    });
    assert!(list_on(&mut client, addr).await.contains(" out\r\n"));

    // 18. Plain bytes on a passive port: refused (counted with the other unauthenticated
    // refusals from the address), and the real client still lists.
    let addr = within(client.epsv()).await.unwrap();
    let plain = DataOptions {
        plaintext: Some(b"hello, this is not TLS\r\n".to_vec()),
        ..Default::default()
    };
    let _plain = within(client.open_data(addr, &plain)).await.unwrap();
    blocking(|| {
        demo.wait_for_audit_where("ftps.data/refused/data_tls_*", |e| {
            e["action"] == "ftps.data"
                && e["outcome"] == "refused"
                && e["peer_ip"] == CLIENT_IP
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("data_tls_"))
        })
    });
    assert!(list_on(&mut client, addr).await.contains(" out\r\n"));

    // Passive ports are not handed out in order: nobody can tell which one comes next.
    let mut ports = Vec::new();
    for _ in 0..40 {
        ports.push(within(client.epsv()).await.unwrap().port());
    }
    let downward = ports.windows(2).filter(|pair| pair[1] < pair[0]).count();
    assert!(downward >= 5, "passive ports look sequential: {ports:?}");
}

/// Opens the session's own data connection to `addr` and lists `/` over it.
async fn list_on(client: &mut FtpsClient, addr: std::net::SocketAddr) -> String {
    let data = within(client.open_data(addr, &DataOptions::default()))
        .await
        .unwrap();
    let reply = within(client.command("LIST")).await.unwrap();
    assert_eq!(reply.code, 150, "{reply}");
    let DataConnection::Tls(mut stream) = data else {
        unreachable!("a TLS data connection was asked for")
    };
    let mut listing = Vec::new();
    within(stream.read_to_end(&mut listing)).await.unwrap();
    let reply = within(client.read_reply()).await.unwrap();
    assert_eq!(reply.code, 226, "{reply}");
    String::from_utf8(listing).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_control_lines_get_500_and_the_connection_is_closed() {
    let demo = shared_demo();
    let moces = demo.user(0);
    let long = format!("USER {}\r\n", "a".repeat(100_000));

    let mut client = connect(&demo).await;
    let _ = within(client.send_raw(long.as_bytes())).await;
    let reply = within(client.read_reply()).await.unwrap();
    assert_eq!(reply.code, 500, "before TLS: {reply}");
    assert!(
        within(client.read_reply()).await.is_err(),
        "before TLS: connection still open"
    );

    let mut client = within(FtpsClient::login(
        demo.addr(),
        demo.tls(&moces),
        &moces.username,
        &moces.password,
    ))
    .await
    .unwrap();
    let _ = within(client.send_raw(long.as_bytes())).await;
    let reply = within(client.read_reply()).await.unwrap();
    assert_eq!(reply.code, 500, "after login: {reply}");
    assert!(
        within(client.read_reply()).await.is_err(),
        "after login: connection still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_closed_after_the_handshake_timeout() {
    let demo = Demo::start_with_env(&[("MFTGW__FTPS__TLS_HANDSHAKE_TIMEOUT_SECS", "1")]);

    // TCP, then silence.
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(demo.addr()).await.unwrap();
    let mut received = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut received)).await;
    assert!(
        closed.is_ok(),
        "a silent connection is still open 5 s into a 1 s handshake timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(received.starts_with(b"220 "), "{received:?}");
    blocking(|| {
        demo.wait_for_audit_where("ftps.connect/refused/tls_not_negotiated_in_time", |e| {
            entry_is(e, "ftps.connect", "refused", "tls_not_negotiated_in_time")
        })
    });

    // AUTH TLS, then no ClientHello.
    let mut client = connect(&demo).await;
    let started = Instant::now();
    assert_eq!(within(client.command("AUTH TLS")).await.unwrap().code, 234);
    let after = tokio::time::timeout(Duration::from_secs(5), client.read_reply()).await;
    assert!(
        matches!(after, Ok(Err(_))),
        "a stalled handshake is still open 5 s into a 1 s handshake timeout: {after:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    blocking(|| {
        demo.wait_for_audit_where("ftps.tls/refused/tls_handshake_timeout", |e| {
            entry_is(e, "ftps.tls", "refused", "tls_handshake_timeout")
        })
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_throttled_then_blocked() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__LOGIN__FREE_FAILURES", "1"),
        ("MFTGW__LOGIN__DELAY_PER_FAILURE_MS", "200"),
        ("MFTGW__LOGIN__BLOCK_AFTER", "3"),
        ("MFTGW__LOGIN__BLOCK_FOR_SECS", "600"),
    ]);
    let users = demo.users();
    let user = &users[1];
    let fingerprint = fingerprint_of(&user.cert);

    let attempt = |password: String| {
        let demo = &demo;
        async move {
            let mut client = connect(demo).await;
            within(client.auth_tls(demo.tls(user))).await.unwrap();
            let reply = within(client.command(&format!("USER {}", user.username)))
                .await
                .unwrap();
            assert_eq!(reply.code, 331);
            let started = Instant::now();
            let reply = within(client.command(&format!("PASS {password}")))
                .await
                .unwrap();
            (reply.code, started.elapsed())
        }
    };

    let mut took = Vec::new();
    for _ in 0..3 {
        let (code, elapsed) = attempt(format!("{}x", user.password)).await;
        assert_eq!(code, 530);
        took.push(elapsed);
    }
    let (code, _) = attempt(user.password.clone()).await;
    assert_eq!(code, 530, "the correct password got in despite the block");
    blocking(|| {
        demo.wait_for_audit_where("ftps.login/refused/blocked", |e| {
            entry_is(e, "ftps.login", "refused", "blocked")
                && e["username"] == user.username.as_str()
                && e["cert_fingerprint"] == fingerprint.as_str()
        })
    });

    let failures: Vec<Value> = blocking(|| demo.audit())
        .into_iter()
        .filter(|e| {
            entry_is(e, "ftps.login", "refused", "wrong_password")
                && e["username"] == user.username.as_str()
        })
        .collect();
    assert_eq!(failures.len(), 3, "{failures:#?}");
    let throttled: Vec<Option<u64>> = failures
        .iter()
        .map(|e| e["detail"]["throttled_ms"].as_u64())
        .collect();
    // One free failure; the attempt after two failures waits 200 ms (one charged failure).
    assert_eq!(throttled, [None, None, Some(200)], "{failures:#?}");
    assert!(
        took[2] >= Duration::from_millis(190),
        "a throttled 530 came after {:?}",
        took[2]
    );
}

/// Anyone can type another company's username. Failures under a foreign certificate (and from
/// another address) block the one who fails, never the user whose name was typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_under_a_foreign_certificate_do_not_lock_the_named_user_out() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__LOGIN__FREE_FAILURES", "0"),
        ("MFTGW__LOGIN__DELAY_PER_FAILURE_MS", "0"),
        ("MFTGW__LOGIN__BLOCK_AFTER", "3"),
        ("MFTGW__LOGIN__BLOCK_FOR_SECS", "600"),
    ]);
    let users = demo.users();
    let (victim, attacker) = (&users[0], &users[1]);
    let attacker_ip = "127.0.0.2".parse().unwrap();
    for _ in 0..5 {
        let (mut client, _) = within(FtpsClient::connect_from(demo.addr(), Some(attacker_ip)))
            .await
            .unwrap();
        within(client.auth_tls(demo.tls(attacker))).await.unwrap();
        within(client.command(&format!("USER {}", victim.username)))
            .await
            .unwrap();
        let reply = within(client.command("PASS guess")).await.unwrap();
        assert_eq!(reply.code, 530);
    }
    blocking(|| {
        demo.wait_for_audit_where("ftps.login/refused/blocked from 127.0.0.2", |e| {
            e["action"] == "ftps.login"
                && e["reason"] == "blocked"
                && e["peer_ip"] == "127.0.0.2"
                && e["username"] == victim.username.as_str()
        })
    });
    let session = within(FtpsClient::login(
        demo.addr(),
        demo.tls(victim),
        &victim.username,
        &victim.password,
    ))
    .await;
    assert!(
        session.is_ok(),
        "the named user was locked out: {:?}",
        session.err()
    );
}

/// Settings under which three failures block, with a short, visible slow-down.
const STRICT_THROTTLE: [(&str, &str); 5] = [
    ("MFTGW__LOGIN__FREE_FAILURES", "0"),
    ("MFTGW__LOGIN__DELAY_PER_FAILURE_MS", "100"),
    ("MFTGW__LOGIN__MAX_DELAY_MS", "300"),
    ("MFTGW__LOGIN__BLOCK_AFTER", "3"),
    ("MFTGW__LOGIN__BLOCK_FOR_SECS", "600"),
];

/// `USER`/`PASS` with `user`'s certificate, named `username`; the reply to `PASS`.
async fn pass_reply(demo: &Demo, user: &DemoUser, username: &str, password: &str) -> u16 {
    let mut client = connect(demo).await;
    within(client.auth_tls(demo.tls(user))).await.unwrap();
    within(client.command(&format!("USER {username}")))
        .await
        .unwrap();
    within(client.command(&format!("PASS {password}")))
        .await
        .unwrap()
        .code
}

/// Review item 3: an old certificate that a renewal replaced (an old script still polling)
/// fails under its own key, and never blocks the renewed certificate, right password and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_with_a_replaced_certificate_do_not_lock_out_the_renewed_one() {
    let demo = Demo::start_with_env(&STRICT_THROTTLE);
    let renewed = demo.user(1);
    let replaced = demo.certificate("replaced");
    assert_eq!(replaced.username, renewed.username);
    for _ in 0..5 {
        let code = pass_reply(&demo, &replaced, &renewed.username, &renewed.password).await;
        assert_eq!(code, 530);
    }
    blocking(|| {
        demo.wait_for_audit_where("ftps.login/refused/blocked for the old certificate", |e| {
            entry_is(e, "ftps.login", "refused", "blocked")
                && e["cert_fingerprint"] == fingerprint_of(&replaced.cert).as_str()
        })
    });
    let session = within(demo.try_login(&renewed)).await;
    assert!(
        session.is_ok(),
        "the renewed certificate was locked out: {:?}",
        session.err()
    );
}

/// Review item 4: behind one address (NAT, a balancer) are many companies. One company's
/// failures block that company; another's correct login from the same address goes in, and
/// its own failures are only slowed down by the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_an_address_do_not_lock_out_another_identity_behind_it() {
    let demo = Demo::start_with_env(&STRICT_THROTTLE);
    let users = demo.users();
    let (failing, neighbour) = (&users[0], &users[2]);
    for _ in 0..5 {
        let code = pass_reply(&demo, failing, &failing.username, "wrong").await;
        assert_eq!(code, 530);
    }
    assert_eq!(
        pass_reply(&demo, failing, &failing.username, &failing.password).await,
        530,
        "the failing identity itself is blocked"
    );
    let session = within(demo.try_login(neighbour)).await;
    assert!(
        session.is_ok(),
        "another company behind the address was locked out: {:?}",
        session.err()
    );
    assert_eq!(
        pass_reply(&demo, neighbour, &neighbour.username, "wrong").await,
        530
    );
    let slowed = blocking(|| {
        demo.wait_for_audit_where("ftps.login/refused/wrong_password of the neighbour", |e| {
            entry_is(e, "ftps.login", "refused", "wrong_password")
                && e["username"] == neighbour.username.as_str()
        })
    });
    assert_eq!(slowed["detail"]["throttled_ms"], 300, "{slowed}");
    let blocked_neighbour = blocking(|| demo.audit())
        .iter()
        .any(|e| e["reason"] == "blocked" && e["username"] == neighbour.username.as_str());
    assert!(!blocked_neighbour, "the address blocked the neighbour");
}

/// Review item 7: a name XML cannot carry (U+FFFE, U+FFFF) is refused before anything is
/// stored, so no status file can be malformed by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_xml_cannot_carry_are_refused_at_upload() {
    let demo = shared_demo();
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    for name in ["bad\u{fffe}.xml", "bad\u{ffff}.xml"] {
        within(client.epsv()).await.unwrap();
        let reply = within(client.command(&format!("STOR /FTPSGW.Heartbeat/{name}")))
            .await
            .unwrap();
        assert_eq!(reply.code, 553, "{name:?}: {reply}");
        let reply = within(client.command(&format!("MKD /FTPSGW.Heartbeat/{name}")))
            .await
            .unwrap();
        assert_eq!(reply.code, 553, "{name:?}: {reply}");
    }
    assert!(
        !demo
            .transactions(&user.username)
            .iter()
            .any(|t| t["ftp_transaction_id"].as_str().unwrap().starts_with("bad")),
        "a name XML cannot carry became a transaction"
    );
}
