//! The legacy "Secure FTP" listener (seed 003) beside the FTPS Gateway, on one store: logins
//! by certificate alone, the old layout, the company's shared `out` with one status file per
//! transaction, and the refusals. Driven with curl, lftp and Python ftplib. curl's URL paths
//! are relative to the login folder; `%2F` makes one absolute.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Demo, DemoUser, curl, curl_at, out_names, run, xml_element};

const HEARTBEAT: &str = "FTPSGW.Heartbeat";

/// The names in the company's `/out` as `user` sees it through the legacy listener.
fn legacy_out(demo: &Demo, user: &DemoUser) -> Vec<String> {
    legacy_out_at(demo, user, "/out")
}

/// The absolute folder `out_dir` as a curl URL path (curl's paths are relative to the login
/// folder; `%2F` makes them absolute).
fn absolute(out_dir: &str) -> String {
    format!("/%2F{}", out_dir.trim_start_matches('/'))
}

/// The names in `out_dir` as `user` sees it through the legacy listener.
fn legacy_out_at(demo: &Demo, user: &DemoUser, out_dir: &str) -> Vec<String> {
    let url = format!("{}/", absolute(out_dir));
    let (ok, names, err) = curl_at(demo, demo.legacy_port(), user, &url, &["--list-only"]);
    assert!(ok, "listing the legacy out failed: {err}");
    let mut names: Vec<String> = names.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Reads `/out/<name>` through the legacy listener; `None` if it is not there.
fn legacy_read(demo: &Demo, user: &DemoUser, name: &str) -> Option<String> {
    legacy_read_at(demo, user, "/out", name)
}

/// Reads `<out_dir>/<name>` through the legacy listener; `None` if it is not there.
fn legacy_read_at(demo: &Demo, user: &DemoUser, out_dir: &str, name: &str) -> Option<String> {
    let url = format!("{}/{name}", absolute(out_dir));
    let (ok, body, _) = curl_at(demo, demo.legacy_port(), user, &url, &[]);
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

/// Reads the status file of `name` in `out_dir` until it says `code`, checking that every
/// read is a whole status document; returns the last one.
fn wait_for_status(demo: &Demo, user: &DemoUser, out_dir: &str, name: &str, code: &str) -> String {
    let file = format!("status_{HEARTBEAT}_{name}.xml");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    loop {
        if let Some(xml) = legacy_read_at(demo, user, out_dir, &file) {
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
    // Both certificates read the status file at once while it is rewritten; every read of
    // either is a whole status document.
    let status = std::thread::scope(|scope| {
        let colleague =
            scope.spawn(|| wait_for_status(&demo, &system, "/out", name, "File exposed"));
        let own = wait_for_status(&demo, &employee, "/out", name, "File exposed");
        assert_eq!(colleague.join().unwrap(), own);
        own
    });
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

#[test]
fn a_personal_certificate_finds_its_own_out_in_its_login_folder() {
    let demo = Demo::start();
    let (person, legacy) = demo.legacy_user(3);
    assert_eq!(legacy.kind, "personal");
    assert_eq!(legacy.cvr, None);
    let home = "/PID_9208-2002-2-123456789012";
    assert_eq!(legacy.login_dir, home);
    assert_eq!(legacy.out_dir, format!("{home}/out"));

    // lftp logs in anonymously, lands in the login folder, which holds the service folder and
    // `out`; above it there is only the login folder. It uploads a heartbeat.
    let body = demo.dir.path().join("person.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let name = "ping-person-1.xml";
    let txid = "person-tx-1";
    let script = format!(
        "set ssl:ca-file {ca}; set ssl:cert-file {cert}; set ssl:key-file {key}; \
         set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         quote PWD; cls -1; cls -1 ..; put {body} -o {HEARTBEAT}/{name}; \
         mkdir {HEARTBEAT}/{txid}; mkdir {HEARTBEAT}/{txid}/in; \
         put {body} -o {HEARTBEAT}/{txid}/in/declaration.xml; quit",
        ca = demo.ca().display(),
        cert = person.cert.display(),
        key = person.key.display(),
        body = body.display(),
    );
    let (ok, out, err) = run(Command::new("lftp")
        .args(["-u", "anonymous,", "-e", &script])
        .arg(format!("ftp://127.0.0.1:{}", demo.legacy_port())));
    assert!(ok, "lftp failed: {err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("257 \"{home}\" is the current directory").as_str(),
            &format!("{HEARTBEAT}/"),
            "out/",
            "../PID_9208-2002-2-123456789012/",
        ],
        "{out}"
    );

    // The status file and the response arrive in the person's own out.
    let status = wait_for_status(&demo, &person, &legacy.out_dir, name, "File exposed");
    assert_eq!(
        xml_element(&status, "filename").as_deref(),
        Some(format!("{home}/{HEARTBEAT}/{name}").as_str()),
        "a person's upload path has no company: {status}"
    );
    // The upload into `<txid>/in` is the transaction `<txid>`.
    wait_for_status(&demo, &person, &legacy.out_dir, txid, "File exposed");
    assert_eq!(
        legacy_out_at(&demo, &person, &legacy.out_dir),
        [
            format!("{HEARTBEAT}_in_{txid}_response.txt"),
            format!("{HEARTBEAT}_in_{name}_response.txt"),
            format!("status_{HEARTBEAT}_{txid}.xml"),
            format!("status_{HEARTBEAT}_{name}.xml"),
        ]
    );
    // No company's out is visible to the person, and no company sees the person's files.
    let (ok, _, _) = curl_at(&demo, demo.legacy_port(), &person, "/%2Fout/", &[]);
    assert!(!ok, "a person has no /out beside the login folder");
    let (company, _) = demo.legacy_user(0);
    assert!(!legacy_out(&demo, &company).contains(&format!("status_{HEARTBEAT}_{name}.xml")));

    // The FTPS Gateway listener refuses the same certificate, whatever the credentials.
    let current = DemoUser {
        username: "PID_9208-2002-2-123456789012".into(),
        password: "x".into(),
        ..person.clone()
    };
    let (ok, _, _) = curl(&demo, &current, "/", &[]);
    assert!(!ok, "the current profile serves companies only");
    demo.wait_for_audit(
        "ftps.login",
        "refused",
        Some("personal_certificate_unsupported"),
    );
}

#[test]
fn both_listeners_take_uploads_at_once_on_one_store() {
    let demo = Demo::start();
    const UPLOADS: usize = 8;
    let legacy: Vec<DemoUser> = [0, 2].iter().map(|&i| demo.legacy_user(i).0).collect();
    let current: Vec<DemoUser> = demo
        .users()
        .into_iter()
        .filter(|user| {
            [
                "CVR_19552101_UID_25351738",
                "CVR_30808460_UI_c3d9e1f7-2a4b-4c6d-8e0f-1a3b5c7d9e2f",
            ]
            .contains(&user.username.as_str())
        })
        .collect();
    assert_eq!(current.len(), 2, "two current-profile users");
    let body = demo.dir.path().join("load.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let body = body.to_str().unwrap();
    std::thread::scope(|scope| {
        for (index, user) in legacy.iter().enumerate() {
            let demo = &demo;
            scope.spawn(move || {
                for n in 0..UPLOADS {
                    let url = format!("/{HEARTBEAT}/legacy-{index}-{n}.xml");
                    let (ok, _, err) = curl_at(demo, demo.legacy_port(), user, &url, &["-T", body]);
                    assert!(ok, "legacy upload {url}: {err}");
                }
            });
        }
        for (index, user) in current.iter().enumerate() {
            let demo = &demo;
            scope.spawn(move || {
                for n in 0..UPLOADS {
                    let url = format!("/{HEARTBEAT}/current-{index}-{n}.xml");
                    let (ok, _, err) = curl(demo, user, &url, &["-T", body]);
                    assert!(ok, "current upload {url}: {err}");
                }
            });
        }
    });

    // Each legacy transaction has one status file in its company's out, answered through;
    // each current one its numbered files in the user's own /out.
    let (company, _) = demo.legacy_user(0);
    let (other_company, _) = demo.legacy_user(2);
    for (index, user) in [(0, &company), (1, &other_company)] {
        for n in 0..UPLOADS {
            wait_for_status(
                &demo,
                user,
                "/out",
                &format!("legacy-{index}-{n}.xml"),
                "File exposed",
            );
        }
        let out = legacy_out(&demo, user);
        assert_eq!(
            out.len(),
            2 * UPLOADS,
            "a status file and a response each: {out:?}"
        );
        assert!(
            out.iter()
                .all(|name| name.contains(&format!("legacy-{index}-"))),
            "{out:?}"
        );
    }
    for (index, user) in current.iter().enumerate() {
        let expected: Vec<String> = (0..UPLOADS)
            .flat_map(|n| crate::support::heartbeat_files(&format!("current-{index}-{n}.xml")))
            .collect();
        let out = crate::support::wait_for_out(&demo, user, &expected);
        assert_eq!(
            out.len(),
            expected.len(),
            "nothing of the legacy uploads: {out:?}"
        );
    }
}

const OPDATER: &str = "Manifest.MidlertidigOpbevaringOpdater";

/// The demo's spool backend posts the unrelated outbound file `name` for `username`; the
/// API's answer.
fn post_outbound(demo: &Demo, username: &str, name: &str) -> Value {
    let api = &demo.manifest().api;
    let file = demo.dir.path().join(name);
    std::fs::write(&file, "<notice/>\n").unwrap();
    let (ok, out, err) = run(Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail-with-body",
            "-X",
            "PUT",
            "--cacert",
        ])
        .arg(demo.ca())
        .args([
            "-H",
            &format!("Authorization: Bearer {}", api.backend_token),
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!(
            "{}/v1/outbound/{OPDATER}/{username}/{name}",
            api.url
        )));
    assert!(ok, "posting {name} for {username}: {out}{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn outbound_files_go_where_the_user_last_sent_that_service() {
    let demo = Demo::start();
    let (employee, _) = demo.legacy_user(0);
    let (colleague, _) = demo.legacy_user(1);
    let employee_username = "CVR_19552101_RID_60134540";
    let current = demo
        .users()
        .into_iter()
        .find(|user| user.username == employee_username)
        .unwrap();

    // Before the employee sent the service anything: their own /out, the current profile's.
    let posted = post_outbound(&demo, employee_username, "notice-1.xml");
    let first_status = posted["status_file"].as_str().unwrap().to_string();
    assert!(
        first_status.starts_with(&format!("status_{OPDATER}_outbound-"))
            && first_status.ends_with("_3.xml"),
        "{posted}"
    );
    crate::support::wait_for_out(
        &demo,
        &current,
        &[format!("{OPDATER}_notice-1.xml"), first_status],
    );
    assert!(legacy_out(&demo, &colleague).is_empty());

    // After an upload through the legacy listener: the company's out, with a legacy status file.
    let body = demo.dir.path().join("update.xml");
    std::fs::write(&body, "<update/>\n").unwrap();
    let (ok, _, err) = curl_at(
        &demo,
        demo.legacy_port(),
        &employee,
        &format!("/{OPDATER}/update-1.xml"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let posted = post_outbound(&demo, employee_username, "notice-2.xml");
    let legacy_status = posted["status_file"].as_str().unwrap().to_string();
    assert!(
        legacy_status.starts_with(&format!("status_{OPDATER}_outbound-"))
            && !legacy_status.ends_with("_3.xml"),
        "a legacy status file has no code suffix: {posted}"
    );
    let shared = legacy_out(&demo, &colleague);
    assert!(
        shared.contains(&format!("{OPDATER}_notice-2.xml")) && shared.contains(&legacy_status),
        "the whole company sees it: {shared:?}"
    );
    let status = legacy_read(&demo, &colleague, &legacy_status).unwrap();
    assert_eq!(
        xml_element(&status, "status.code").as_deref(),
        Some("File exposed"),
        "{status}"
    );
    assert!(!out_names(&demo, &current).contains(&format!("{OPDATER}_notice-2.xml")));

    // A person has only the legacy profile: their files go to the out in their login folder.
    let (person, legacy) = demo.legacy_user(3);
    let person_username = legacy.login_dir.trim_start_matches('/').to_string();
    demo.admin(&["role", "grant", &person_username, OPDATER]);
    let posted = post_outbound(&demo, &person_username, "notice-3.xml");
    let person_status = posted["status_file"].as_str().unwrap().to_string();
    assert!(!person_status.ends_with("_3.xml"), "{posted}");
    assert_eq!(
        legacy_out_at(&demo, &person, &legacy.out_dir),
        [format!("{OPDATER}_notice-3.xml"), person_status]
    );
}
