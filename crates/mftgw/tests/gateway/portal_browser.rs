//! The Certificate Portal in a real browser: headless Chromium (Debian's package) driven by
//! Playwright with client certificates (`tests/browser/portal.mjs`), against `mftgw demo`.
//! What a person does there is then checked where it matters: over FTPS with curl, and in the
//! audit log. Screenshots of every page land in `test-artifacts/portal/`.
//!
//! Needs `node`, Chromium (`/usr/bin/chromium`, or `MFTGW_CHROMIUM`) and
//! `npm ci --prefix crates/mftgw/tests/browser`; `scripts/test` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Demo, DemoUser, curl, heartbeat_files, run, wait_for_out};
use serde_json::{Value, json};

const PORTAL_PASSWORD: &str = "Portal-Password-1";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/portal")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("MFTGW_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {} (install Debian's chromium, or set MFTGW_CHROMIUM); scripts/test installs it",
        path.display()
    );
    path
}

fn certificate(user: &DemoUser) -> Value {
    json!({ "cert_pem": user.cert, "key_pem": user.key })
}

/// Runs `scenario` of `portal.mjs` with `config` (plus the portal's address, Chromium and
/// the screenshot directory); returns the JSON it prints. Fails the test with the browser
/// script's output and the gateway's log if any check in the browser failed.
fn browse(demo: &Demo, scenario: &str, mut config: Value) -> Value {
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix crates/mftgw/tests/browser` (scripts/test does)"
    );
    config["portal"] = json!(demo.portal_url());
    config["chromium"] = json!(chromium());
    config["screenshots"] = json!(screenshots());
    let config_path = demo.dir.path().join(format!("browser-{scenario}.json"));
    std::fs::write(&config_path, config.to_string()).unwrap();
    let (ok, stdout, stderr) = run(Command::new("node")
        .arg(browser_dir().join("portal.mjs"))
        .arg(scenario)
        .arg(&config_path)
        // Playwright's own TLS connection to the portal checks the server certificate.
        .env("NODE_EXTRA_CA_CERTS", demo.ca()));
    assert!(
        ok,
        "browser scenario {scenario} failed:\n{stdout}\n{stderr}\n--- gateway log ---\n{}",
        demo.log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("scenario {scenario} printed no JSON ({e}): {stdout}"))
}

fn audited(demo: &Demo, action: &str, outcome: &str, username: &str) -> bool {
    demo.audit().iter().any(|event| {
        event["action"] == action && event["outcome"] == outcome && event["username"] == username
    })
}

#[test]
fn a_person_registers_in_the_browser_uses_ftps_and_renews() {
    // A short activation delay, so that the page shows "registered, active from ..." first.
    let demo = Demo::start_with_env(&[("MFTGW__REGISTRATION__ACTIVATION_DELAY_SECS", "2")]);
    let original = demo.issue_certificate("portal-a", "voces", "24681357", "4242");
    let username = original.username.clone();
    assert_eq!(username, "CVR_24681357_UID_4242");

    let registered = browse(
        &demo,
        "register",
        json!({
            "certificate": certificate(&original),
            "username": username,
            "portal_password": PORTAL_PASSWORD,
            "activation_delay": 2,
        }),
    );
    let gateway_password = registered["gateway_password"].as_str().unwrap().to_string();

    // The central security system grants the role; then the heartbeat over FTPS with the
    // password the portal showed.
    demo.admin(&["role", "grant", &username, "FTPSGW.Heartbeat"]);
    let ftps_user = DemoUser {
        password: gateway_password.clone(),
        services: vec!["FTPSGW.Heartbeat".into()],
        ..original.clone()
    };
    let upload = "ping20261123120000000-portal.xml";
    let body = demo.dir.path().join("heartbeat.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let (ok, _, err) = curl(
        &demo,
        &ftps_user,
        &format!("/FTPSGW.Heartbeat/{upload}"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(
        ok,
        "heartbeat upload with the portal's password failed: {err}"
    );
    let out_names = heartbeat_files(upload);
    wait_for_out(&demo, &ftps_user, &out_names);

    browse(
        &demo,
        "activity",
        json!({
            "certificate": certificate(&original),
            "username": username,
            "portal_password": PORTAL_PASSWORD,
            "upload_name": upload,
            "out_names": out_names,
        }),
    );

    // Later the company renews the certificate: same account, valid for longer.
    let renewed = demo.issue_certificate("portal-a-renewed", "voces", "24681357", "4242");
    let renewal = browse(
        &demo,
        "renew",
        json!({
            "certificate": certificate(&renewed),
            "old_certificate": certificate(&original),
            "username": username,
            "portal_password": PORTAL_PASSWORD,
        }),
    );
    assert_eq!(
        renewal["gateway_password"], gateway_password,
        "a renewal keeps the gateway password"
    );
    let renewed_user = DemoUser {
        password: gateway_password.clone(),
        ..renewed.clone()
    };
    let (ok, listing, err) = curl(&demo, &renewed_user, "/", &["--list-only"]);
    assert!(ok, "the renewed certificate logs in over FTPS: {err}");
    assert!(listing.contains("FTPSGW.Heartbeat"), "{listing}");
    let (ok, _, err) = curl(&demo, &ftps_user, "/", &["--list-only"]);
    assert!(!ok, "the replaced certificate no longer logs in");
    assert!(
        err.contains("530") || err.contains("Access denied") || err.contains("denied"),
        "{err}"
    );

    for (action, outcome) in [
        ("portal.login", "allowed"),
        ("portal.password", "allowed"),
        ("portal.register_requested", "info"),
        ("portal.register", "allowed"),
        ("portal.profile", "allowed"),
        ("portal.logout", "allowed"),
        ("portal.renew", "allowed"),
    ] {
        assert!(
            audited(&demo, action, outcome, &username),
            "no {action}/{outcome} for {username} in the audit log"
        );
    }
}

#[test]
fn foces_personal_and_expired_certificates_are_refused() {
    let demo = Demo::start();
    let foces = demo.certificate("foces");
    let personal = demo.certificate("personal");
    let refusals = browse(
        &demo,
        "refused",
        json!({ "certificates": { "foces": certificate(&foces), "personal": certificate(&personal) } }),
    );
    assert!(
        refusals["foces"].as_str().unwrap().contains("FOCES"),
        "{refusals}"
    );
    assert!(
        refusals["personal"]
            .as_str()
            .unwrap()
            .contains("Personlige certifikater"),
        "{refusals}"
    );
    demo.wait_for_audit("portal.certificate", "refused", Some("foces_unsupported"));
    demo.wait_for_audit(
        "portal.certificate",
        "refused",
        Some("personal_certificate_unsupported"),
    );

    let expired = demo.certificate("expired");
    let outcome = browse(
        &demo,
        "expired",
        json!({ "certificate": certificate(&expired) }),
    );
    assert!(
        demo.log()
            .contains("Certificate Portal TLS handshake failed"),
        "the portal refused the expired certificate in the handshake: {outcome}\n{}",
        demo.log()
    );
}

#[test]
fn forms_without_csrf_and_replayed_session_cookies_are_refused() {
    let demo = Demo::start();
    let unregistered = demo.certificate("unregistered");
    let unregistered_name = crate::support::username_of(&unregistered.cert);
    browse(
        &demo,
        "csrf",
        json!({
            "certificate": certificate(&unregistered),
            "username": unregistered_name,
            "portal_password": PORTAL_PASSWORD,
        }),
    );
    demo.wait_for_audit("portal.csrf", "refused", Some("csrf_token_mismatch"));

    let owner = demo.user(1);
    browse(
        &demo,
        "replay",
        json!({
            "certificate": certificate(&owner),
            "username": owner.username,
            "portal_password": PORTAL_PASSWORD,
            "other_certificate": certificate(&unregistered),
            "other_username": unregistered_name,
        }),
    );
    demo.wait_for_audit("portal.session", "refused", Some("other_certificate"));
}

/// A revoked certificate may register (SPEC §1), but sees no gateway password and changes
/// neither the portal password nor the profile (review item 5).
#[test]
fn a_revoked_certificate_sees_only_that_it_is_revoked() {
    let demo = Demo::start();
    let revoked = demo.certificate("revoked");
    browse(
        &demo,
        "revoked",
        json!({
            "certificate": certificate(&revoked),
            "username": crate::support::username_of(&revoked.cert),
        }),
    );
    assert!(audited(
        &demo,
        "portal.login",
        "allowed",
        &crate::support::username_of(&revoked.cert)
    ));
}
