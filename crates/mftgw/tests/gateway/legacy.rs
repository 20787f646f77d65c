//! The legacy "Secure FTP" listener (seed 003) beside the FTPS Gateway, on one store: logins
//! by certificate alone, the old layout, the company's shared `out` with one status file per
//! transaction, and the refusals. Driven with curl, lftp and Python ftplib. curl's URL paths
//! are relative to the login folder; `%2F` makes one absolute.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Demo, DemoUser, curl, curl_at, out_names, run, xml_element};

const HEARTBEAT: &str = "FTPSGW.Heartbeat";

/// The names in `out` as `user` sees it through the legacy listener.
fn legacy_out(demo: &Demo, user: &DemoUser) -> Vec<String> {
    let (ok, names, err) = curl_at(demo, demo.legacy_port(), user, "/%2Fout/", &["--list-only"]);
    assert!(ok, "listing the legacy out failed: {err}");
    let mut names: Vec<String> = names.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Reads `out/<name>` through the legacy listener; `None` if it is not there.
fn legacy_read(demo: &Demo, user: &DemoUser, name: &str) -> Option<String> {
    let (ok, body, _) = curl_at(
        demo,
        demo.legacy_port(),
        user,
        &format!("/%2Fout/{name}"),
        &[],
    );
    ok.then_some(body)
}

/// Uploads a heartbeat named `name` into the heartbeat folder of the login folder.
fn upload_heartbeat(demo: &Demo, user: &DemoUser, name: &str) {
    let body = demo.dir.path().join(format!("{name}.body"));
    std::fs::write(&body, "<ping/>\n").unwrap();
    let (ok, _, err) = curl_at(
        demo,
        demo.legacy_port(),
        user,
        &format!("/{HEARTBEAT}/{name}"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "legacy upload of {name} failed: {err}");
}

/// Reads the status file of `name` until it says `code`, checking that every read is a whole
/// status document; returns the last one.
fn wait_for_status(demo: &Demo, user: &DemoUser, name: &str, code: &str) -> String {
    let file = format!("status_{HEARTBEAT}_{name}.xml");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    loop {
        if let Some(xml) = legacy_read(demo, user, &file) {
            reads += 1;
            assert!(
                xml.starts_with("<?xml") && xml.trim_end().ends_with("</status>"),
                "read {reads} of {file} is not a whole status file:\n{xml}"
            );
            if xml_element(&xml, "status.code").as_deref() == Some(code) {
                return xml;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{file} never said {code:?}\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn any_credentials_log_in_by_certificate_into_the_old_layout() {
    let demo = Demo::start();
    let (user, legacy) = demo.legacy_user(0);
    assert_eq!(legacy.kind, "moces");
    assert_eq!(legacy.login_dir, "/RID_60134540");

    // ftplib, anonymous with an e-mail as password, as the seed allows.
    let (ok, out, err) =
        demo.python_at(demo.legacy_port(), "ftplib_legacy.py", &user, &["session"]);
    assert!(ok, "{err}");
    let session: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(session["pwd"], legacy.login_dir.as_str(), "{session}");
    let mut services = legacy.services.clone();
    services.sort();
    assert_eq!(session["home"], serde_json::json!(services), "{session}");
    assert_eq!(session["pwd_up"], "/", "{session}");
    assert_eq!(
        session["top"],
        serde_json::json!(["RID_60134540", "out"]),
        "`out` is beside the login folder: {session}"
    );

    // Any other USER/PASS works the same; the current profile's login rules do not apply.
    let arbitrary = DemoUser {
        username: "whoever".into(),
        password: "whatever".into(),
        ..user.clone()
    };
    let (ok, listing, err) = curl_at(&demo, demo.legacy_port(), &arbitrary, "/", &["--list-only"]);
    assert!(ok, "{err}");
    let mut listed: Vec<&str> = listing.lines().collect();
    listed.sort();
    assert_eq!(listed, services);
    // The login folder holds no `out`, and nothing else is visible at the top.
    let (ok, _, _) = curl_at(
        &demo,
        demo.legacy_port(),
        &user,
        "/%2FRID_60134540/out/",
        &[],
    );
    assert!(!ok, "no out inside the login folder");
    let (ok, _, _) = curl_at(&demo, demo.legacy_port(), &user, "/%2FUID_25351738/", &[]);
    assert!(!ok, "another certificate's folder is not visible");

    // lftp, with its own anonymous login.
    let script = format!(
        "set ssl:ca-file {ca}; set ssl:cert-file {cert}; set ssl:key-file {key}; \
         set ftp:ssl-force true; set ftp:ssl-protect-data true; pwd; cls -1 ..; quit",
        ca = demo.ca().display(),
        cert = user.cert.display(),
        key = user.key.display(),
    );
    let (ok, out, err) = run(Command::new("lftp")
        .args(["-u", "anonymous,", "-e", &script])
        .arg(format!("ftp://127.0.0.1:{}", demo.legacy_port())));
    assert!(ok, "lftp failed: {err}");
    assert!(
        out.contains("RID_60134540/") && out.contains("out/"),
        "{out}"
    );

    // Not sending USER/PASS is an error.
    let (ok, out, err) =
        demo.python_at(demo.legacy_port(), "ftplib_legacy.py", &user, &["no-login"]);
    assert!(ok, "{err}");
    let refused: Value = serde_json::from_str(&out).unwrap();
    assert!(
        refused["pwd"].as_str().unwrap().starts_with("530"),
        "{refused}"
    );

    let allowed = demo.wait_for_audit_where("a legacy login", |event| {
        event["action"] == "ftps.login"
            && event["outcome"] == "allowed"
            && event["detail"]["profile"] == "secure_ftp"
    });
    assert_eq!(
        allowed["username"], "CVR_19552101_RID_60134540",
        "{allowed}"
    );
}

#[test]
fn a_company_shares_one_out_where_each_transaction_has_one_status_file() {
    let demo = Demo::start();
    let (employee, employee_legacy) = demo.legacy_user(0);
    let (system, system_legacy) = demo.legacy_user(1);
    let (stranger, stranger_legacy) = demo.legacy_user(2);
    assert_eq!(employee_legacy.cvr, system_legacy.cvr);
    assert_ne!(employee_legacy.cvr, stranger_legacy.cvr);

    let name = "ping-legacy-1.xml";
    upload_heartbeat(&demo, &employee, name);
    let status = wait_for_status(&demo, &employee, name, "File exposed");
    assert_eq!(
        xml_element(&status, "filename").as_deref(),
        Some(format!("/CVR_19552101/RID_60134540/{HEARTBEAT}/{name}").as_str()),
        "{status}"
    );
    let status_file = format!("status_{HEARTBEAT}_{name}.xml");
    let response = format!("{HEARTBEAT}_in_{name}_response.txt");
    let expected = vec![response.clone(), status_file.clone()];
    assert_eq!(
        legacy_out(&demo, &employee),
        expected,
        "one status file, rewritten"
    );
    // The other certificate of the company sees the same out; another company does not.
    assert_eq!(legacy_out(&demo, &system), expected);
    assert!(legacy_out(&demo, &stranger).is_empty());
    assert!(legacy_read(&demo, &stranger, &status_file).is_none());
    // The FTPS Gateway profile keeps each user's own /out: the legacy files are not there.
    let current = demo
        .users()
        .into_iter()
        .find(|user| user.username == "CVR_19552101_RID_60134540")
        .unwrap();
    assert!(!out_names(&demo, &current).contains(&status_file));

    // An upload through the current listener is reported there, not in the company's out.
    let body = demo.dir.path().join("current.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let (ok, _, err) = curl(
        &demo,
        &current,
        &format!("/{HEARTBEAT}/ping-current-1.xml"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    crate::support::wait_for_out(
        &demo,
        &current,
        &[format!("status_{HEARTBEAT}_ping-current-1.xml_3.xml")],
    );
    assert_eq!(legacy_out(&demo, &system), expected);

    // A DELE by one certificate removes the file for the whole company.
    let (ok, _, err) = curl_at(
        &demo,
        demo.legacy_port(),
        &system,
        "/%2Fout/",
        &["-Q", &format!("DELE /out/{response}")],
    );
    assert!(ok, "{err}");
    assert_eq!(legacy_out(&demo, &employee), vec![status_file.clone()]);

    // The same name again is refused without touching the first upload's status file.
    upload_heartbeat(&demo, &employee, name);
    let reused = format!("status_{HEARTBEAT}_{name}_0.xml");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !legacy_out(&demo, &system).contains(&reused) {
        assert!(Instant::now() < deadline, "no refusal of the reused name");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = legacy_read(&demo, &system, &status_file).unwrap();
    assert_eq!(
        xml_element(&first, "status.code").as_deref(),
        Some("File exposed")
    );
}

#[test]
fn the_legacy_listener_refuses_what_the_gateway_refuses() {
    let demo = Demo::start();
    let port = demo.legacy_port();
    let as_anonymous = |name: &str| DemoUser {
        username: "anonymous".into(),
        password: "x".into(),
        ..demo.certificate(name)
    };
    // Refused at login: a valid certificate no one registered, and a FOCES certificate.
    for (name, reason) in [
        ("unregistered", "unknown_certificate"),
        ("foces", "foces_unsupported"),
    ] {
        let (ok, _, err) = curl_at(&demo, port, &as_anonymous(name), "/", &[]);
        assert!(!ok, "{name} logged in");
        assert!(
            err.contains("530") || err.contains("denied"),
            "{name}: {err}"
        );
        demo.wait_for_audit("ftps.login", "refused", Some(reason));
    }
    // Refused in the handshake: expired, revoked and untrusted certificates.
    for name in ["expired", "revoked", "untrusted"] {
        let (ok, _, err) = curl_at(&demo, port, &as_anonymous(name), "/", &[]);
        assert!(!ok, "{name} logged in: {err}");
    }
    // And no certificate at all.
    let (ok, _, err) = run(Command::new("curl")
        .args(["--silent", "--show-error", "--ssl-reqd", "--cacert"])
        .arg(demo.ca())
        .args(["-u", "anonymous:x"])
        .arg(format!("ftp://127.0.0.1:{port}/")));
    assert!(!ok, "a login without a certificate: {err}");
    demo.wait_for_audit_where("a refused legacy handshake", |event| {
        event["action"] == "ftps.tls" && event["outcome"] == "refused"
    });
}
