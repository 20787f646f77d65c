//! The protocol engine over real sockets and real TLS, with an in-memory backend: login,
//! navigation, transfers, and every refusal the engine makes on its own.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mftgw_client::{DataConnection, DataOptions, FtpsClient, TlsVersions};
use mftgw_testpki::TestPki;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn connect(server: &TestServer) -> FtpsClient {
    let (client, greeting) = FtpsClient::connect(server.addr).await.unwrap();
    assert_eq!(greeting.code, 220);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_navigates_and_lists_over_pasv_and_epsv() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;

    assert_eq!(
        client.command("PWD").await.unwrap().text,
        "\"/\" is the current directory"
    );
    let listing = String::from_utf8(client.download("MLSD").await.unwrap()).unwrap();
    assert!(listing.contains("type=dir;"), "{listing}");
    assert!(listing.contains("perm=elcm; in\r\n"), "{listing}");
    assert!(listing.contains(" out\r\n"), "{listing}");
    let names = String::from_utf8(client.download("NLST").await.unwrap()).unwrap();
    assert_eq!(names, "in\r\nout\r\n");

    assert_eq!(client.command("CWD out").await.unwrap().code, 250);
    assert_eq!(
        client.command("PWD").await.unwrap().text,
        "\"/out\" is the current directory"
    );
    let long = String::from_utf8(client.download("LIST -la").await.unwrap()).unwrap();
    assert!(long.starts_with("-rw-rw----   1 ftp      ftp "), "{long}");
    assert!(long.contains(" hello.txt\r\n"), "{long}");

    // The same through PASV.
    let addr = client.pasv().await.unwrap();
    assert_eq!(addr.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    let data = client
        .open_data(addr, &DataOptions::default())
        .await
        .unwrap();
    assert_eq!(client.command("RETR hello.txt").await.unwrap().code, 150);
    let DataConnection::Tls(mut stream) = data else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes, HELLO);
    assert_eq!(client.read_reply().await.unwrap().code, 226);

    assert_eq!(
        client.command("SIZE hello.txt").await.unwrap().text,
        HELLO.len().to_string()
    );
    assert_eq!(client.command("MDTM hello.txt").await.unwrap().code, 213);
    assert_eq!(client.command("SIZE /in").await.unwrap().code, 550);
    assert_eq!(client.command("CWD /nowhere").await.unwrap().code, 550);
    assert_eq!(client.command("CDUP").await.unwrap().code, 250);
    assert_eq!(
        client.command("CWD ../../..").await.unwrap().text,
        "Directory changed to \"/\""
    );
    let mlst = client.command("MLST out").await.unwrap();
    assert_eq!(mlst.code, 250);
    assert!(mlst.text.contains("type=dir;"), "{}", mlst.text);
    assert_eq!(client.command("QUIT").await.unwrap().code, 221);
    server.backend.wait_for_event("closed alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_resumes_a_download() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;
    assert_eq!(client.command("REST 7").await.unwrap().code, 350);
    let rest = client.download("RETR /out/hello.txt").await.unwrap();
    assert_eq!(rest, &HELLO[7..]);
    // The offset applied once only.
    assert_eq!(client.download("RETR /out/hello.txt").await.unwrap(), HELLO);
    assert_eq!(client.command("REST 3").await.unwrap().code, 350);
    assert_eq!(client.command("STOR /in/resumed").await.unwrap().code, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_an_upload_only_after_a_clean_tls_close() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;

    let reply = client.upload("/in/clean.xml", b"<a/>").await.unwrap();
    assert_eq!(
        (reply.code, reply.text.as_str()),
        (226, "Stored /in/clean.xml")
    );
    assert_eq!(ledger_entry("/in/clean.xml"), Some(("committed", 4)));

    // TCP FIN without TLS close_notify: a truncated upload must not be committed.
    let mut stream = client
        .start_transfer("STOR /in/truncated.xml")
        .await
        .unwrap();
    stream.write_all(b"<partial").await.unwrap();
    stream.flush().await.unwrap();
    let (tcp, _) = stream.into_inner();
    drop(tcp);
    let reply = client.read_reply().await.unwrap();
    assert_eq!(reply.code, 426, "{reply}");
    assert_eq!(ledger_entry("/in/truncated.xml"), Some(("aborted", 8)));

    // Uploads outside /in are refused before any data connection is used.
    client.epsv().await.unwrap();
    assert_eq!(client.command("STOR /out/x").await.unwrap().code, 550);
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abor_stops_a_running_download_and_upload() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;

    // Read a little so the transfer is really running, then abort without draining.
    let mut stream = client.start_transfer("RETR /out/endless").await.unwrap();
    let mut first = [0u8; 1024];
    stream.read_exact(&mut first).await.unwrap();
    let aborted = client.command("ABOR").await.unwrap();
    assert_eq!(aborted.code, 426, "{aborted}");
    assert_eq!(client.read_reply().await.unwrap().code, 226);
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);

    let mut stream = client.start_transfer("STOR /in/aborted.bin").await.unwrap();
    stream.write_all(&[7u8; 10_000]).await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(client.command("ABOR").await.unwrap().code, 426);
    assert_eq!(client.read_reply().await.unwrap().code, 226);
    assert_eq!(
        ledger_entry("/in/aborted.bin").map(|e| e.0),
        Some("aborted")
    );
    assert_eq!(client.command("ABOR").await.unwrap().code, 225);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_auth_tls_only_auth_feat_help_noop_and_quit_are_answered() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = connect(&server).await;
    assert_eq!(client.command("USER alice").await.unwrap().code, 530);
    assert_eq!(client.command("PASS x").await.unwrap().code, 530);
    assert_eq!(client.command("PBSZ 0").await.unwrap().code, 530);
    assert_eq!(client.command("LIST").await.unwrap().code, 530);
    assert_eq!(client.command("SITE X").await.unwrap().code, 530);
    let feat = client.command("FEAT").await.unwrap();
    assert_eq!(feat.code, 211);
    assert!(feat.text.contains("AUTH TLS") && feat.text.contains("PROT"));
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);
    assert_eq!(client.command("HELP").await.unwrap().code, 214);
    assert_eq!(client.command("AUTH SSL").await.unwrap().code, 504);
    assert_eq!(client.command("QUIT").await.unwrap().code, 221);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_commands_need_pbsz_and_prot_p_under_pasv_and_epsv() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let (mut client, _) = FtpsClient::connect(server.addr).await.unwrap();
    client.auth_tls(tls_for(pki, "moces")).await.unwrap();
    client.command(&format!("USER {USER}")).await.unwrap();
    assert_eq!(
        client
            .command(&format!("PASS {PASSWORD}"))
            .await
            .unwrap()
            .code,
        230
    );

    // No PBSZ/PROT at all.
    for command in [
        "EPSV",
        "PASV",
        "LIST",
        "STOR /in/plain.xml",
        "RETR /out/hello.txt",
    ] {
        assert_eq!(
            client.command(command).await.unwrap().code,
            521,
            "{command}"
        );
    }
    assert_eq!(
        client.command("PROT P").await.unwrap().code,
        503,
        "PROT before PBSZ"
    );
    assert_eq!(client.command("PBSZ 0").await.unwrap().code, 200);
    for level in ["C", "S", "E"] {
        assert_eq!(
            client.command(&format!("PROT {level}")).await.unwrap().code,
            534
        );
    }
    // PROT C was refused, so data stays refused under both passive modes.
    for passive in ["EPSV", "PASV"] {
        assert_eq!(
            client.command(passive).await.unwrap().code,
            521,
            "{passive}"
        );
        assert_eq!(
            client.command("STOR /in/plain.xml").await.unwrap().code,
            521
        );
    }
    assert_eq!(client.command("CCC").await.unwrap().code, 534);
    assert_eq!(ledger_entry("/in/plain.xml"), None);

    assert_eq!(client.command("PROT P").await.unwrap().code, 200);
    assert_eq!(
        client.upload("/in/protected.xml", b"x").await.unwrap().code,
        226
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_unsupported_and_active_mode_commands_with_502() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;
    for command in [
        "PORT 127,0,0,1,4,1",
        "EPRT |1|127.0.0.1|1025|",
        "SITE CHMOD 600 x",
        "STAT",
        "RNFR a",
        "XYZZ",
        "APPE /in/x",
    ] {
        assert_eq!(
            client.command(command).await.unwrap().code,
            502,
            "{command}"
        );
    }
    assert_eq!(client.command("TYPE A").await.unwrap().code, 200);
    assert_eq!(client.command("TYPE X").await.unwrap().code, 501);
    assert_eq!(client.command("MODE B").await.unwrap().code, 504);
    assert_eq!(client.command("STRU R").await.unwrap().code, 504);
    assert_eq!(client.command("CWD a\\b").await.unwrap().code, 553);
    assert_eq!(
        client
            .command(&format!("CWD {}", "x".repeat(300)))
            .await
            .unwrap()
            .code,
        553
    );
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_handshakes_without_a_valid_certificate_and_says_why() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let cases = [
        (tls_without_certificate(&server.ca), "no_client_certificate"),
        (tls_for(pki, "untrusted"), "certificate_untrusted_issuer"),
        (tls_for(pki, "expired"), "certificate_expired"),
        (tls_for(pki, "revoked"), "certificate_revoked"),
    ];
    for (tls, reason) in cases {
        let (mut client, _) = FtpsClient::connect(server.addr).await.unwrap();
        let outcome = match client.auth_tls(tls).await {
            // TLS 1.3: the client learns of the refusal on its first read.
            Ok(()) => client.command("NOOP").await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(outcome.is_err(), "{reason}: handshake should fail");
        let event = server.backend.wait_for_event(reason).await;
        assert!(event.starts_with("tls_refused"), "{event}");
    }
    // The certificate that was presented is known to the audit.
    assert!(
        server
            .backend
            .events()
            .iter()
            .any(|e| e.contains("certificate_revoked cert=true"))
    );
    // OCES3 certificates (RSA-PSS, no EKU) and TLS 1.2 are fine.
    for (name, versions) in [
        ("oces3-org", TlsVersions::Tls12Only),
        ("oces3-employee", TlsVersions::Tls13Only),
    ] {
        FtpsClient::login(
            server.addr,
            tls_for_versions(pki, name, versions),
            USER,
            PASSWORD,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_after_start_is_refused_after_a_crl_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut pki = TestPki::generate(dir.path()).unwrap();
    let server = start(&pki, |_| {}).await;
    // One client configuration throughout, so that it holds a session it could resume.
    let resuming = tls_for(&pki, "moces");
    FtpsClient::login(server.addr, Arc::clone(&resuming), USER, PASSWORD)
        .await
        .unwrap();

    pki.revoke("moces").unwrap();
    // Until reloaded, the old CRL is in force.
    logged_in(&server, &pki).await;
    server.trust.reload_crls().unwrap();
    // Resuming the earlier session must not bring the revoked certificate back in.
    let resumed = FtpsClient::login(server.addr, resuming, USER, PASSWORD).await;
    assert!(
        resumed.is_err(),
        "a revoked certificate logged in by resuming a session"
    );
    server
        .backend
        .wait_for_event("certificate_revoked cert=true")
        .await;
    let (mut client, _) = FtpsClient::connect(server.addr).await.unwrap();
    let outcome = match client.auth_tls(tls_for(&pki, "moces")).await {
        Ok(()) => client.command("NOOP").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err());
    server.backend.wait_for_event("certificate_revoked").await;
}

/// Opens the real client's data connection on `addr` and downloads `/out/hello.txt` over it.
async fn retrieve_hello_on(client: &mut FtpsClient, addr: std::net::SocketAddr) {
    let data = client
        .open_data(addr, &DataOptions::default())
        .await
        .unwrap();
    assert_eq!(
        client.command("RETR /out/hello.txt").await.unwrap().code,
        150
    );
    let DataConnection::Tls(mut stream) = data else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes, HELLO);
    assert_eq!(client.read_reply().await.unwrap().code, 226);
}

/// A data connection that resumes the control connection's TLS session brings no new
/// certificate, so rustls does not look at it again: the engine does, against the CRLs in
/// force now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_connection_resuming_a_since_revoked_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut pki = TestPki::generate(dir.path()).unwrap();
    let server = start(&pki, |config| {
        config.timeouts.data_connect = Duration::from_secs(1);
    })
    .await;
    let mut client = logged_in(&server, &pki).await;
    assert_eq!(client.download("RETR /out/hello.txt").await.unwrap(), HELLO);

    pki.revoke("moces").unwrap();
    server.trust.reload_crls().unwrap();
    let addr = client.epsv().await.unwrap();
    let resumed = client.open_data(addr, &DataOptions::default()).await;
    server
        .backend
        .wait_for_event("data_refused data_certificate_revoked")
        .await;
    let Ok(DataConnection::Tls(mut stream)) = resumed else {
        panic!("the resumed handshake did not complete on the client's side");
    };
    assert_eq!(
        stream.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "the data connection must resume, or the test proves nothing"
    );
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    assert!(
        bytes.is_empty(),
        "a revoked session's data connection got data"
    );
    assert_eq!(
        client.command("RETR /out/hello.txt").await.unwrap().code,
        150
    );
    assert_eq!(client.read_reply().await.unwrap().code, 425);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_connections_at_once_are_limited_and_given_back_with_their_transfer() {
    let pki = shared_pki();
    let server = start(pki, |config| config.limits.max_data_connections = 1).await;
    let mut first = logged_in(&server, pki).await;
    let mut second = logged_in(&server, pki).await;
    first.epsv().await.unwrap();
    let reply = second.command("EPSV").await.unwrap();
    assert_eq!(reply.code, 425, "{reply}");
    assert!(reply.text.contains("Too many transfers"), "{reply}");
    // A new passive request replaces the first session's, and a finished transfer gives its
    // slot back.
    assert_eq!(first.download("RETR /out/hello.txt").await.unwrap(), HELLO);
    assert_eq!(second.download("RETR /out/hello.txt").await.unwrap(), HELLO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_lifetime_however_busy() {
    let pki = shared_pki();
    let server = start(pki, |config| {
        config.timeouts.session_lifetime = Duration::from_millis(1500);
    })
    .await;
    let mut client = logged_in(&server, pki).await;
    let reply = loop {
        let reply = client.command("NOOP").await.unwrap();
        if reply.code != 200 {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reply.code, 421, "{reply}");
    assert!(reply.text.contains("lifetime"), "{reply}");
    server
        .backend
        .wait_for_event("closed alice lifetime_exceeded")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_connections_are_bound_to_their_control_session() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;

    // Another (valid, trusted) certificate on the data connection gets nothing, and the
    // real client's transfer goes ahead on the same port.
    let addr = client.epsv().await.unwrap();
    let other = DataOptions {
        tls: Some(tls_for(pki, "voces")),
        ..Default::default()
    };
    let stolen = client.open_data(addr, &other).await;
    if let Ok(DataConnection::Tls(mut stream)) = stolen {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        assert!(bytes.is_empty(), "a foreign certificate received data");
    }
    server
        .backend
        .wait_for_event("data_connection_certificate_mismatch")
        .await;
    retrieve_hello_on(&mut client, addr).await;

    // Plain bytes on a passive port: refused, and the real client still gets its data.
    let addr = client.epsv().await.unwrap();
    let plain = DataOptions {
        plaintext: Some(b"hello, not TLS\r\n".to_vec()),
        ..Default::default()
    };
    let _plain = client.open_data(addr, &plain).await.unwrap();
    server.backend.wait_for_event("data_tls_").await;
    retrieve_hello_on(&mut client, addr).await;

    // A connection from another address is dropped; the real client still gets its data.
    let addr = client.epsv().await.unwrap();
    let intruder = DataOptions {
        source_ip: Some("127.0.0.2".parse().unwrap()),
        ..Default::default()
    };
    let intruded = client.open_data(addr, &intruder).await;
    assert!(
        intruded.is_err() || {
            let DataConnection::Tls(mut s) = intruded.unwrap() else {
                unreachable!()
            };
            let mut b = Vec::new();
            s.read_to_end(&mut b).await.is_err() || b.is_empty()
        }
    );
    server
        .backend
        .wait_for_event("data_connection_from_other_address from=127.0.0.2")
        .await;
    retrieve_hello_on(&mut client, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_command_without_its_connection_gets_425_at_the_deadline() {
    let pki = shared_pki();
    let server = start(pki, |config| {
        config.timeouts.data_connect = Duration::from_millis(500);
    })
    .await;
    let mut client = logged_in(&server, pki).await;
    client.epsv().await.unwrap();
    assert_eq!(client.command("LIST").await.unwrap().code, 150);
    assert_eq!(client.read_reply().await.unwrap().code, 425);
    server
        .backend
        .wait_for_event("data_connection_timeout")
        .await;
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_can_be_required_for_data_connections() {
    let pki = shared_pki();
    let server = start(pki, |config| config.require_session_resumption = true).await;
    // rustls resumes the control session on the data connection, as curl and lftp do.
    let mut client = logged_in(&server, pki).await;
    assert_eq!(client.download("RETR /out/hello.txt").await.unwrap(), HELLO);
    // A fresh handshake with the same certificate but a new TLS configuration is refused;
    // the resumed one that follows is taken.
    let addr = client.epsv().await.unwrap();
    let fresh = DataOptions {
        tls: Some(tls_for(pki, "moces")),
        ..Default::default()
    };
    let _fresh = client.open_data(addr, &fresh).await;
    server
        .backend
        .wait_for_event("data_connection_not_resumed")
        .await;
    retrieve_hello_on(&mut client, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_control_lines_are_refused_and_the_connection_closed() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = connect(&server).await;
    let long = format!("USER {}\r\n", "a".repeat(100_000));
    let _ = client.send_raw(long.as_bytes()).await;
    let reply = client.read_reply().await.unwrap();
    assert_eq!(reply.code, 500, "{reply}");
    assert!(
        client.read_reply().await.is_err(),
        "connection should be closed"
    );

    let mut client = logged_in(&server, pki).await;
    let _ = client.send_raw(long.as_bytes()).await;
    assert_eq!(client.read_reply().await.unwrap().code, 500);
    assert!(client.read_reply().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_slow_logins_and_idle_sessions_are_closed() {
    let pki = shared_pki();
    let server = start(pki, |config| {
        config.timeouts.tls_handshake = Duration::from_millis(500);
        config.timeouts.login = Duration::from_millis(1500);
        config.timeouts.idle = Duration::from_millis(800);
    })
    .await;
    // TCP only, then silence.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buffer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buffer)).await;
    assert!(
        closed.is_ok(),
        "connection still open after the handshake timeout"
    );
    server
        .backend
        .wait_for_event("tls_not_negotiated_in_time")
        .await;

    // AUTH TLS, then no ClientHello.
    let mut client = connect(&server).await;
    assert_eq!(client.command("AUTH TLS").await.unwrap().code, 234);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), client.read_reply())
            .await
            .unwrap()
            .is_err()
    );
    server.backend.wait_for_event("tls_handshake_timeout").await;

    // TLS up, then never logged in: the login deadline holds however busy the client is.
    let (mut client, _) = FtpsClient::connect(server.addr).await.unwrap();
    client.auth_tls(tls_for(pki, "moces")).await.unwrap();
    let started = std::time::Instant::now();
    let reply = loop {
        let reply = client.command("NOOP").await.unwrap();
        if reply.code != 200 {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never timed out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (reply.code, reply.text.as_str()),
        (421, "Login timeout: closing control connection")
    );

    // Logged in, then idle.
    let mut client = logged_in(&server, pki).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), client.read_reply())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.code, 421, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_is_refused() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_for(pki, "moces"));
    let name = rustls_pki_types::ServerName::IpAddress(server.addr.ip().into());
    assert!(connector.connect(name, tcp).await.is_err());
    server
        .backend
        .wait_for_event("implicit_tls_not_supported")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limits_per_ip_and_per_user() {
    let pki = shared_pki();
    let server = start(pki, |config| {
        config.limits.max_sessions_per_ip = 3;
        config.limits.max_sessions_per_user = 2;
    })
    .await;
    let _first = logged_in(&server, pki).await;
    let _second = logged_in(&server, pki).await;
    // Third session of the same user, under another name the backend maps to it: refused at
    // PASS, since the limit counts the backend's identity.
    let (mut third, _) = FtpsClient::connect(server.addr).await.unwrap();
    third.auth_tls(tls_for(pki, "moces")).await.unwrap();
    third.command(&format!("USER {USER_ALIAS}")).await.unwrap();
    assert_eq!(
        third
            .command(&format!("PASS {PASSWORD}"))
            .await
            .unwrap()
            .code,
        530
    );
    server
        .backend
        .wait_for_event("too_many_sessions_for_user")
        .await;
    // Fourth connection from the same address: refused at once.
    let (_, greeting) = FtpsClient::connect(server.addr).await.unwrap();
    assert_eq!(greeting.code, 421);
    server
        .backend
        .wait_for_event("too_many_sessions_from_address")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_starts_in_the_home_its_backend_gives_it() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    // `login` sends AUTH TLS, USER and PASS, and fails unless PASS gets 230.
    let mut client = FtpsClient::login(
        server.addr,
        tls_for(pki, "moces"),
        USER_AT_HOME_IN,
        PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(
        client.command("PWD").await.unwrap().text,
        "\"/in\" is the current directory"
    );
    assert_eq!(client.command("CDUP").await.unwrap().code, 250);
    assert_eq!(
        client.command("PWD").await.unwrap().text,
        "\"/\" is the current directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_get_530_and_close_after_three() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let (mut client, _) = FtpsClient::connect(server.addr).await.unwrap();
    client.auth_tls(tls_for(pki, "moces")).await.unwrap();
    assert_eq!(client.command("PASS early").await.unwrap().code, 503);
    assert_eq!(client.command("LIST").await.unwrap().code, 530);
    for _ in 0..3 {
        client.command(&format!("USER {USER}")).await.unwrap();
        assert_eq!(client.command("PASS wrong").await.unwrap().code, 530);
    }
    assert!(
        client.command("NOOP").await.is_err(),
        "closed after three failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_421_to_every_session() {
    let pki = shared_pki();
    let mut server = start(pki, |_| {}).await;
    let mut idle = logged_in(&server, pki).await;
    let mut fresh = connect(&server).await;
    server.shutdown();
    assert_eq!(idle.read_reply().await.unwrap().code, 421);
    assert_eq!(fresh.read_reply().await.unwrap().code, 421);
    tokio::time::timeout(Duration::from_secs(5), &mut server.stopped)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasv_advertises_the_configured_address_and_ports_from_the_pool() {
    let pki = shared_pki();
    // A pool of two ports that are free now: fixed ports can be taken by other sockets
    // (outgoing connections draw local ports from the same range).
    let first = free_port_pair();
    let pool = first..=first + 1;
    let server = start(pki, |config| {
        config.advertised_address = Some("192.0.2.7".parse().unwrap());
        config.passive_ports = pool.clone();
    })
    .await;
    let mut client = logged_in(&server, pki).await;
    let advertised = client.pasv().await.unwrap();
    assert_eq!(advertised.ip(), "192.0.2.7".parse::<IpAddr>().unwrap());
    assert!(pool.contains(&advertised.port()));
    // EPSV names only the port; both modes draw from the pool.
    let extended = client.epsv().await.unwrap();
    assert!(pool.contains(&extended.port()));
    assert_ne!(extended.port(), advertised.port());
}

/// The first of two consecutive ports that can both be bound on 127.0.0.1 right now.
fn free_port_pair() -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_before_abor_are_answered_first_and_the_queue_is_bounded() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;

    let _stream = client.start_transfer("RETR /out/endless").await.unwrap();
    client.send_raw(b"NOOP\r\nPWD\r\nABOR\r\n").await.unwrap();
    let replies = [
        client.read_reply().await.unwrap().code,
        client.read_reply().await.unwrap().code,
        client.read_reply().await.unwrap().code,
        client.read_reply().await.unwrap().code,
    ];
    assert_eq!(
        replies,
        [426, 200, 257, 226],
        "transfer, NOOP, PWD, then ABOR"
    );
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);

    let _stream = client.start_transfer("RETR /out/endless").await.unwrap();
    client
        .send_raw("NOOP\r\n".repeat(65).as_bytes())
        .await
        .unwrap();
    let reply = client.read_reply().await.unwrap();
    assert_eq!(reply.code, 426, "{reply}");
    let reply = client.read_reply().await.unwrap();
    assert_eq!(reply.code, 421, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_a_running_transfer_after_the_grace_period() {
    let pki = shared_pki();
    let mut server = start(pki, |config| {
        config.timeouts.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    let mut client = logged_in(&server, pki).await;
    let mut stream = client
        .start_transfer("STOR /in/cut-by-shutdown.bin")
        .await
        .unwrap();
    stream.write_all(b"partial").await.unwrap();
    stream.flush().await.unwrap();
    server.shutdown();
    assert_eq!(client.read_reply().await.unwrap().code, 426);
    assert_eq!(client.read_reply().await.unwrap().code, 421);
    assert_eq!(
        ledger_entry("/in/cut-by-shutdown.bin").map(|e| e.0),
        Some("aborted")
    );
    tokio::time::timeout(Duration::from_secs(10), &mut server.stopped)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opts_mlst_is_accepted_and_mlsd_of_a_file_is_501() {
    let pki = shared_pki();
    let server = start(pki, |_| {}).await;
    let mut client = logged_in(&server, pki).await;
    assert_eq!(
        client.command("OPTS MLST type;size;").await.unwrap().code,
        200
    );
    client.epsv().await.unwrap();
    assert_eq!(
        client.command("MLSD /out/hello.txt").await.unwrap().code,
        501
    );
    assert_eq!(client.command("NOOP").await.unwrap().code, 200);
}
