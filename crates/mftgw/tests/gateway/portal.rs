//! The Certificate Portal over HTTP: every form's bad input (overlong, wrong types, script in
//! the fields, missing CSRF token), the registration job, sessions, throttling and headers,
//! with a real TLS client certificate against `mftgw demo`. The browser walk-through is in
//! `portal_browser.rs`.

use std::time::{Duration, Instant};

use crate::support::portal::Portal;
use crate::support::{Demo, DemoUser, curl};
use reqwest::StatusCode;

const PASSWORD: &str = "Portal-Password-1";
const SCRIPT: &str = "<script>alert(1)</script>";

#[tokio::test]
async fn the_login_form_refuses_bad_input() {
    let demo = Demo::start();
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    let login = portal.get("/").await;
    login.assert(StatusCode::OK, &portal.username);
    let csrf = login.csrf();

    portal
        .post("/login", &[("password", "whatever")])
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");
    portal
        .post("/login", &[("csrf", "0"), ("password", "whatever")])
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");
    let json = portal
        .client
        .post(format!("{}/login", portal.base))
        .header("content-type", "application/json")
        .body(r#"{"password": 1}"#);
    portal.send(json).await.assert(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Formularen kunne ikke læses",
    );
    // Large enough that the portal must read it all to be heard (the kernel resets a
    // connection closed with unread data).
    let huge = "x".repeat(1_000_000);
    portal
        .post("/login", &[("csrf", &csrf), ("password", &huge)])
        .await
        .assert(StatusCode::PAYLOAD_TOO_LARGE, "Formularen kunne ikke læses");
    portal
        .post(
            "/login",
            &[("csrf", &csrf), ("password", "a"), ("password", "b")],
        )
        .await
        .assert(StatusCode::BAD_REQUEST, "Formularen kunne ikke læses");
    let wrong = portal
        .post("/login", &[("csrf", &csrf), ("password", SCRIPT)])
        .await;
    wrong.assert(StatusCode::UNAUTHORIZED, "Forkert adgangskode");
    assert!(!wrong.body.contains(SCRIPT));

    // Nothing but the login page without a session, whatever the page.
    for path in ["/transactions", "/out", "/password"] {
        portal
            .get(path)
            .await
            .assert(StatusCode::OK, "id=\"password\"");
    }
    demo.wait_for_audit("portal.csrf", "refused", Some("csrf_token_mismatch"));
    demo.wait_for_audit("portal.login", "refused", Some("wrong_password"));
}

#[tokio::test]
async fn the_password_form_enforces_the_policy() {
    let demo = Demo::start();
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    let csrf = portal.get("/").await.csrf();
    let username = portal.username.clone();
    let page = portal
        .post("/login", &[("csrf", &csrf), ("password", &username)])
        .await;
    assert_eq!(page.location(), "/password");
    // Until the password is changed, every page leads to the change.
    assert_eq!(portal.get("/").await.location(), "/password");
    assert_eq!(portal.get("/transactions").await.location(), "/password");
    let csrf = portal.get("/password").await.csrf();

    let long = "x".repeat(129);
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "wrong",
            PASSWORD,
            PASSWORD,
            "nuværende adgangskode er forkert",
        ),
        (&username, "short", "short", "mindst 10 tegn"),
        (&username, &long, &long, "højst være 128 tegn"),
        (&username, &username, &username, "ikke være dit brugernavn"),
        (&username, PASSWORD, "Portal-Password-2", "ikke ens"),
        (
            &username,
            "tab\there-is-long",
            "tab\there-is-long",
            "kontroltegn",
        ),
    ];
    for (current, new, confirm, says) in cases {
        let page = portal
            .post(
                "/password",
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("new", new),
                    ("confirm", confirm),
                ],
            )
            .await;
        page.assert(StatusCode::BAD_REQUEST, says);
        if new != username {
            assert!(
                !page.body.contains(new),
                "a refused password is never shown"
            );
        }
    }
    portal
        .post(
            "/password",
            &[
                ("current", &username),
                ("new", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");

    let page = portal
        .post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", &username),
                ("new", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.location(), "/?done=password", "{}", page.body);
    portal
        .get("/?done=password")
        .await
        .assert(StatusCode::OK, "adgangskode er skiftet");
    demo.wait_for_audit("portal.password", "refused", Some("password_too_short"));
    demo.wait_for_audit("portal.password", "allowed", None);

    // The username no longer works; the new password does.
    let mut other_browser = Portal::new(&demo, &demo.certificate("unregistered"));
    let csrf = other_browser.get("/").await.csrf();
    other_browser
        .post("/login", &[("csrf", &csrf), ("password", &username)])
        .await
        .assert(StatusCode::UNAUTHORIZED, "Forkert adgangskode");
    let csrf = other_browser.get("/").await.csrf();
    let page = other_browser
        .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(page.location(), "/", "{}", page.body);
}

#[tokio::test]
async fn the_profile_form_refuses_bad_input_and_escapes_what_it_shows() {
    let demo = Demo::start();
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    let csrf = portal.first_login(PASSWORD).await;

    let long_email = format!("{}@example.com", "a".repeat(300));
    let cases: [(&str, &str, bool, &str); 6] = [
        ("12ab5678", "", true, "SE-nummer er 8 cifre"),
        (SCRIPT, "", true, "SE-nummer er 8 cifre"),
        (
            "",
            "<script>alert(1)</script>@x.dk",
            true,
            "ikke en e-mailadresse",
        ),
        ("", "karen@", true, "ikke en e-mailadresse"),
        ("", &long_email, true, "ikke en e-mailadresse"),
        ("12345678", "karen@firma.dk", false, "mindst én snitflade"),
    ];
    for (se_number, email, ftps, says) in cases {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("se_number", se_number),
            ("email", email),
        ];
        if ftps {
            form.push(("ftps", "on"));
        }
        let page = portal.post("/profile", &form).await;
        page.assert(StatusCode::BAD_REQUEST, says);
        assert!(
            !page.body.contains(SCRIPT),
            "unescaped script:\n{}",
            page.body
        );
        if se_number == SCRIPT || email.contains("<script>") {
            assert!(
                page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"),
                "the refused value is shown escaped:\n{}",
                page.body
            );
        }
    }
    // Wrong types: a field twice, a body that is not a form, a field far too long.
    portal
        .post(
            "/profile",
            &[("csrf", &csrf), ("se_number", "1"), ("se_number", "2")],
        )
        .await
        .assert(StatusCode::BAD_REQUEST, "Formularen kunne ikke læses");
    let huge = "1".repeat(20_000);
    portal
        .post("/profile", &[("csrf", &csrf), ("se_number", &huge)])
        .await
        .assert(StatusCode::PAYLOAD_TOO_LARGE, "Formularen kunne ikke læses");
    portal
        .post("/profile", &[("se_number", "12345678"), ("ftps", "on")])
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");
    // The other forms hold only a CSRF token: without the right one they do nothing.
    portal
        .post("/register", &[])
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");
    portal
        .post("/logout", &[("csrf", SCRIPT)])
        .await
        .assert(StatusCode::FORBIDDEN, "kom ikke fra portalen");
    let overview = portal.get("/").await;
    overview.assert(StatusCode::OK, "ikke registreret");
    assert!(
        overview
            .body
            .contains("id=\"se_number\" name=\"se_number\" value=\"\""),
        "nothing refused was saved"
    );

    // What is accepted is stored, and shown escaped.
    let page = portal
        .post(
            "/profile",
            &[
                ("csrf", &csrf),
                ("se_number", " 12345678 "),
                ("email", "it&ops@firma.dk"),
                ("as4", "on"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/?done=saved", "{}", page.body);
    let overview = portal.get("/?done=saved").await;
    overview.assert(StatusCode::OK, "Dine ændringer er gemt");
    assert!(overview.body.contains("value=\"12345678\""));
    assert!(
        overview.body.contains("it&#38;ops@firma.dk")
            || overview.body.contains("it&amp;ops@firma.dk")
    );
    assert!(!overview.body.contains("it&ops"));
    assert!(overview.body.contains("name=\"as4\" value=\"on\" checked"));
    assert!(!overview.body.contains("name=\"ftps\" value=\"on\" checked"));
    demo.wait_for_audit("portal.profile", "refused", Some("malformed_se_number"));
    demo.wait_for_audit("portal.profile", "allowed", None);
}

/// Refreshes the overview until it says `text` (a registration finished); returns it.
async fn overview_saying(portal: &mut Portal, text: &str) -> crate::support::portal::Page {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = portal.get("/").await;
        if page.body.contains(text) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "registration never finished:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the overview says the registration is done; returns the gateway password it
/// shows.
async fn registered_password(portal: &mut Portal) -> String {
    let overview = overview_saying(portal, "klar til brug").await;
    let marker = "id=\"gateway-password-value\">";
    let start = overview.body.find(marker).unwrap() + marker.len();
    overview.body[start..start + 24].to_string()
}

#[tokio::test]
async fn registering_twice_queues_once_and_the_password_shown_works_over_ftps() {
    let demo = Demo::start();
    let fresh = demo.issue_certificate("portal-double", "moces", "13572468", "77");

    let mut portal = Portal::new(&demo, &fresh);
    let csrf = portal.first_login(PASSWORD).await;
    portal
        .get("/")
        .await
        .assert(StatusCode::OK, "ikke registreret");
    // Two clicks at the same moment.
    let (first, second) = tokio::join!(
        portal.form_request("/register", &[("csrf", &csrf)]).send(),
        portal.form_request("/register", &[("csrf", &csrf)]).send(),
    );
    for click in [first, second] {
        assert_eq!(click.unwrap().status(), StatusCode::SEE_OTHER);
    }
    let password = registered_password(&mut portal).await;

    let username = portal.username.clone();
    let audit = demo.audit();
    let of = |action: &str, outcome: &str| {
        audit
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["outcome"] == outcome
                    && e["username"] == username.as_str()
            })
            .count()
    };
    assert_eq!(
        of("portal.register", "allowed"),
        1,
        "one registration for two clicks"
    );
    // If the first job was done before the second click was queued, the second found the
    // certificate registered already and changed nothing.
    let repeated = audit
        .iter()
        .filter(|e| e["action"] == "portal.register" && e["outcome"] == "info")
        .collect::<Vec<_>>();
    assert!(
        repeated.len() <= 1 && repeated.iter().all(|e| e["reason"] == "already_current"),
        "{repeated:?}"
    );
    assert_eq!(
        of("portal.register_requested", "info"),
        2,
        "both clicks are audited"
    );
    assert_eq!(
        demo.admin(&["user", "list"])
            .matches(username.as_str())
            .count(),
        1
    );
    let user = DemoUser { password, ..fresh };
    let (ok, _, err) = curl(&demo, &user, "/", &["--list-only"]);
    assert!(
        ok,
        "the password the portal showed does not work over FTPS: {err}"
    );
}

/// Revokes client `name` of the demo's PKI, reloads the CRLs (SIGHUP), and waits until FTPS
/// refuses `user`'s certificate as revoked.
fn revoke_and_reload(demo: &Demo, name: &str, user: &DemoUser) {
    demo.revoke_in_pki(name);
    demo.signal("HUP");
    let fingerprint = crate::support::fingerprint_of(&user.cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = curl(demo, user, "/", &["--list-only"]);
        let refused = demo.count_audit(|e| {
            e["action"] == "ftps.tls"
                && e["reason"] == "certificate_revoked"
                && e["cert_fingerprint"] == fingerprint.as_str()
        });
        if refused > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the CRL reload never took effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Review item 5: a revoked certificate may register (SPEC §1), and does nothing else: no
/// password change (the first password is the public username), no profile change, no
/// gateway password, no transactions or `/out`; the overview says it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_may_register_and_nothing_else() {
    let demo = Demo::start();
    let revoked = demo.issue_certificate("portal-revoked", "moces", "13572468", "78");
    tokio::task::block_in_place(|| revoke_and_reload(&demo, "portal-revoked", &revoked));

    let mut portal = Portal::new(&demo, &revoked);
    let username = portal.username.clone();
    let overview = revoked_login(&mut portal).await;
    assert!(!overview.body.contains("id=\"save\""), "{}", overview.body);
    let csrf = overview.csrf();
    portal
        .get("/password")
        .await
        .assert(StatusCode::FORBIDDEN, "kun registrere certifikatet");
    let new = "Chosen-By-A-Thief-1";
    portal
        .post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", &username),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await
        .assert(StatusCode::FORBIDDEN, "kun registrere certifikatet");
    portal
        .post(
            "/profile",
            &[
                ("csrf", &csrf),
                ("se_number", "12345678"),
                ("email", ""),
                ("ftps", "on"),
            ],
        )
        .await
        .assert(StatusCode::FORBIDDEN, "kun registrere certifikatet");
    for path in ["/transactions", "/out"] {
        portal
            .get(path)
            .await
            .assert(StatusCode::FORBIDDEN, "kun registrere certifikatet");
    }

    let page = portal.post("/register", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let overview = overview_saying(&mut portal, "Registreret og aktiv").await;
    overview.assert(StatusCode::OK, "spærret (tilbagekaldt)");
    assert!(
        !overview.body.contains("gateway-password-value")
            && !overview.body.contains("gateway-user"),
        "a revoked certificate was shown the gateway login:\n{}",
        overview.body
    );
    // The password is still the username: nothing was changed.
    revoked_login(&mut Portal::new(&demo, &revoked)).await;
}

/// A revoked certificate's first login: the username is the password, and it goes straight
/// to the overview (no password change), which says it is revoked; returns the overview.
async fn revoked_login(portal: &mut Portal) -> crate::support::portal::Page {
    let username = portal.username.clone();
    let csrf = portal.get("/").await.csrf();
    let page = portal
        .post("/login", &[("csrf", &csrf), ("password", &username)])
        .await;
    assert_eq!(page.location(), "/", "{}", page.body);
    let overview = portal.get("/").await;
    overview.assert(StatusCode::OK, "spærret (tilbagekaldt)");
    overview
}

/// A revoked certificate may register a new user, but not push out a valid registered one,
/// however new it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_cannot_replace_a_valid_registered_one() {
    let demo = Demo::start();
    let valid = demo.issue_certificate("kept", "moces", "13572468", "80");
    let printed = demo.admin(&["user", "register", "--cert", valid.cert.to_str().unwrap()]);
    let password = printed
        .lines()
        .find_map(|line| line.strip_prefix("gateway password: "))
        .unwrap()
        .to_string();
    let three_years = 3 * 365 * 24 * 60 * 60;
    let newer =
        demo.issue_certificate_valid_for("newer-revoked", "moces", "13572468", "80", three_years);
    tokio::task::block_in_place(|| revoke_and_reload(&demo, "newer-revoked", &newer));

    let mut portal = Portal::new(&demo, &newer);
    let overview = revoked_login(&mut portal).await;
    assert!(
        !overview.body.contains("id=\"register\""),
        "{}",
        overview.body
    );
    let page = portal
        .post("/register", &[("csrf", &overview.csrf())])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    demo.wait_for_audit(
        "portal.register_requested",
        "info",
        Some("nothing_to_register"),
    );
    let valid = DemoUser { password, ..valid };
    let (ok, _, err) = curl(&demo, &valid, "/", &["--list-only"]);
    assert!(ok, "the valid certificate was replaced: {err}");
}

/// Logs in with the portal `password` (after the first change); returns the overview.
async fn login_with(portal: &mut Portal, password: &str) -> crate::support::portal::Page {
    let csrf = portal.get("/").await.csrf();
    let page = portal
        .post("/login", &[("csrf", &csrf), ("password", password)])
        .await;
    assert_eq!(page.location(), "/", "{}", page.body);
    portal.get("/").await
}

/// Asserts that `portal`'s certificate sees no transactions, no `/out` and may change
/// nothing.
async fn limited_to_the_overview(portal: &mut Portal, csrf: &str) {
    const LIMITED: &str = "erstattet af et nyere, eller brugeren er spærret";
    for path in ["/transactions", "/out", "/password"] {
        portal
            .get(path)
            .await
            .assert(StatusCode::FORBIDDEN, LIMITED);
    }
    portal
        .post(
            "/profile",
            &[
                ("csrf", csrf),
                ("se_number", "12345678"),
                ("email", ""),
                ("ftps", "on"),
            ],
        )
        .await
        .assert(StatusCode::FORBIDDEN, LIMITED);
}

/// Review item 5: like a revoked certificate, a replaced one and the certificate of a
/// suspended user see where they stand and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_suspended_certificates_see_only_the_overview() {
    let demo = Demo::start();
    let first = demo.issue_certificate("limited-1", "moces", "13572468", "81");
    demo.admin(&["user", "register", "--cert", first.cert.to_str().unwrap()]);
    let mut portal = Portal::new(&demo, &first);
    portal.first_login(PASSWORD).await;
    portal
        .get("/transactions")
        .await
        .assert(StatusCode::OK, "Seneste transaktioner");

    let three_years = 3 * 365 * 24 * 60 * 60;
    let renewed =
        demo.issue_certificate_valid_for("limited-2", "moces", "13572468", "81", three_years);
    demo.admin(&["user", "register", "--cert", renewed.cert.to_str().unwrap()]);
    let mut replaced = Portal::new(&demo, &first);
    let overview = login_with(&mut replaced, PASSWORD).await;
    overview.assert(StatusCode::OK, "erstattet");
    limited_to_the_overview(&mut replaced, &overview.csrf()).await;

    let mut current = Portal::new(&demo, &renewed);
    let username = current.username.clone();
    login_with(&mut current, PASSWORD).await;
    current
        .get("/transactions")
        .await
        .assert(StatusCode::OK, "Seneste transaktioner");
    demo.admin(&["user", "suspend", &username]);
    let mut suspended = Portal::new(&demo, &renewed);
    let overview = login_with(&mut suspended, PASSWORD).await;
    overview.assert(StatusCode::OK, "spærret");
    limited_to_the_overview(&mut suspended, &overview.csrf()).await;
}

/// Review item 5: a renewal that follows a revocation gives the user a new gateway password
/// (the revoked certificate's holder may know the old one); the portal shows it to the new
/// certificate, and the old password no longer works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_after_a_revocation_rotates_the_gateway_password() {
    let demo = Demo::start();
    let first = demo.issue_certificate("rotating-1", "voces", "24681357", "5");
    let printed = demo.admin(&["user", "register", "--cert", first.cert.to_str().unwrap()]);
    let old_password = printed
        .lines()
        .find_map(|line| line.strip_prefix("gateway password: "))
        .unwrap()
        .to_string();
    let first = DemoUser {
        password: old_password.clone(),
        ..first
    };
    assert!(curl(&demo, &first, "/", &["--list-only"]).0);
    tokio::task::block_in_place(|| revoke_and_reload(&demo, "rotating-1", &first));

    // Valid for longer than the first, as a renewal is.
    let three_years = 3 * 365 * 24 * 60 * 60;
    let renewed =
        demo.issue_certificate_valid_for("rotating-2", "voces", "24681357", "5", three_years);
    let mut portal = Portal::new(&demo, &renewed);
    let csrf = portal.first_login(PASSWORD).await;
    let page = portal.post("/register", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let new_password = registered_password(&mut portal).await;
    assert_ne!(new_password, old_password);

    let with_old = DemoUser {
        password: old_password,
        ..renewed.clone()
    };
    assert!(
        !curl(&demo, &with_old, "/", &["--list-only"]).0,
        "the old password still works"
    );
    let with_new = DemoUser {
        password: new_password,
        ..renewed
    };
    let (ok, _, err) = curl(&demo, &with_new, "/", &["--list-only"]);
    assert!(ok, "{err}");
    demo.wait_for_audit_where("portal.renew with a rotated password", |e| {
        e["action"] == "portal.renew"
            && e["outcome"] == "allowed"
            && e["detail"]["password_rotated"].is_string()
    });
}

/// Review item 5: operators who want more than the username as the first portal password
/// hand out one-time codes.
#[tokio::test]
async fn with_operator_codes_the_first_portal_password_is_a_one_time_code() {
    let demo = Demo::start_with_env(&[("MFTGW__PORTAL__FIRST_PASSWORD", "operator_code")]);
    let unregistered = demo.certificate("unregistered");
    let mut portal = Portal::new(&demo, &unregistered);
    let username = portal.username.clone();
    let csrf = portal.get("/").await.csrf();
    portal
        .post("/login", &[("csrf", &csrf), ("password", &username)])
        .await
        .assert(StatusCode::UNAUTHORIZED, "Forkert adgangskode");

    let printed = demo.admin(&["portal", "code", &username]);
    let code = printed
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let csrf = portal.get("/").await.csrf();
    let page = portal
        .post("/login", &[("csrf", &csrf), ("password", &code)])
        .await;
    assert_eq!(page.location(), "/password", "{}", page.body);
    let page = portal.change_password(&code, PASSWORD).await;
    assert_eq!(page.location(), "/?done=password", "{}", page.body);

    // Used: from now on only the chosen password opens the account.
    let mut again = Portal::new(&demo, &unregistered);
    let csrf = again.get("/").await.csrf();
    again
        .post("/login", &[("csrf", &csrf), ("password", &code)])
        .await
        .assert(StatusCode::UNAUTHORIZED, "Forkert adgangskode");
    demo.wait_for_audit("admin.portal_code", "allowed", None);
}

/// Review item 5: a certificate that expires while its connection is open is refused by the
/// portal on its next request (the handshake checked it once; a kept-alive connection or a
/// resumed TLS session would not check it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expires_during_a_visit_is_refused_on_its_next_request() {
    let demo = Demo::start();
    let short = demo.issue_certificate_valid_for("short-lived", "moces", "13572468", "79", 6);
    let not_after = crate::support::not_after(&short.cert);
    let mut portal = Portal::new(&demo, &short);
    portal.get("/").await.assert(StatusCode::OK, "Log på");
    while time::OffsetDateTime::now_utc() <= not_after + time::Duration::SECOND {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    portal
        .get("/")
        .await
        .assert(StatusCode::FORBIDDEN, "udløbet");
    demo.wait_for_audit("portal.certificate", "refused", Some("certificate_expired"));
}

#[tokio::test]
async fn without_the_ftps_interface_the_certificate_cannot_log_in_over_ftps() {
    let demo = Demo::start();
    let user = demo.user(0);
    let mut portal = Portal::new(&demo, &user);
    let csrf = portal.first_login(PASSWORD).await;
    let overview = portal.get("/").await;
    overview.assert(StatusCode::OK, "klar til brug");
    assert!(
        overview.body.contains(&user.password),
        "the demo user's password is shown"
    );

    let page = portal
        .post("/profile", &[("csrf", &csrf), ("as4", "on")])
        .await;
    assert_eq!(page.location(), "/?done=saved", "{}", page.body);
    let (ok, _, _) = curl(&demo, &user, "/", &["--list-only"]);
    assert!(!ok, "an AS4-only certificate logged in over FTPS");
    demo.wait_for_audit("ftps.login", "refused", Some("ftps_interface_not_chosen"));

    let page = portal
        .post(
            "/profile",
            &[("csrf", &csrf), ("ftps", "on"), ("as4", "on")],
        )
        .await;
    assert_eq!(page.location(), "/?done=saved", "{}", page.body);
    let (ok, _, err) = curl(&demo, &user, "/", &["--list-only"]);
    assert!(ok, "FTPS chosen again, but the login failed: {err}");
}

#[tokio::test]
async fn idle_sessions_end_and_failed_logins_are_throttled() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__PORTAL__IDLE_TIMEOUT_SECS", "1"),
        ("MFTGW__LOGIN__FREE_FAILURES", "1"),
        ("MFTGW__LOGIN__DELAY_PER_FAILURE_MS", "10"),
        ("MFTGW__LOGIN__BLOCK_AFTER", "3"),
    ]);
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    portal.first_login(PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    portal
        .get("/")
        .await
        .assert(StatusCode::OK, "Din session er udløbet");

    for _ in 0..3 {
        let csrf = portal.get("/").await.csrf();
        portal
            .post(
                "/login",
                &[("csrf", &csrf), ("password", "not-the-password")],
            )
            .await
            .assert(StatusCode::UNAUTHORIZED, "Forkert adgangskode");
    }
    let csrf = portal.get("/").await.csrf();
    portal
        .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await
        .assert(StatusCode::TOO_MANY_REQUESTS, "For mange forkerte forsøg");
    demo.wait_for_audit("portal.login", "refused", Some("blocked"));
}

#[tokio::test]
async fn pages_are_protected_by_headers_cookies_and_the_certificate() {
    let demo = Demo::start();
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    let page = portal.get("/").await;
    let header = |name: &str| {
        page.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert!(
        header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(
        header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert!(header("strict-transport-security").is_some());
    let login_cookie = header("set-cookie").unwrap();
    for flag in [
        "__Host-mftgw_login=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(login_cookie.contains(flag), "{login_cookie}");
    }

    // English on request; Danish by default.
    assert!(page.body.contains("<html lang=\"da\">"));
    let switch = portal.get("/lang/en").await;
    assert_eq!(switch.status, StatusCode::SEE_OTHER);
    portal
        .get("/")
        .await
        .assert(StatusCode::OK, "Log on using your password");
    portal
        .get("/no-such-page")
        .await
        .assert(StatusCode::NOT_FOUND, "There is no such page");

    // Without a client certificate there is no TLS connection at all.
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(demo.ca()).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let refused = anonymous
        .get(format!("{}/", demo.portal_url()))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a request without a certificate got {refused:?}"
    );

    // A certificate of an untrusted CA neither.
    let untrusted = Portal::new(&demo, &demo.certificate("untrusted"));
    let request = untrusted.client.get(format!("{}/", untrusted.base));
    assert!(request.send().await.is_err());

    // Nor TLS 1.1, even with a good certificate (with which TLS 1.2 works).
    let user = demo.certificate("unregistered");
    let address = demo.portal_url().trim_start_matches("https://").to_string();
    let cipher_with = |version: &str| {
        let (_, out, err) = crate::support::run(
            std::process::Command::new("timeout")
                .args(["20", "openssl", "s_client", "-connect", &address, version])
                .args(["-cipher", "DEFAULT@SECLEVEL=0", "-cert"])
                .arg(&user.cert)
                .arg("-key")
                .arg(&user.key),
        );
        let cipher = out
            .lines()
            .find_map(|line| line.split_once("Cipher is ").map(|(_, c)| c.to_string()));
        cipher.unwrap_or_else(|| panic!("openssl s_client {version} said: {out}{err}"))
    };
    assert_ne!(cipher_with("-tls1_2"), "(NONE)", "TLS 1.2 works");
    assert_eq!(cipher_with("-tls1_1"), "(NONE)", "TLS 1.1 is refused");
}

#[tokio::test]
async fn parallel_guesses_are_throttled_like_sequential_ones() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__LOGIN__FREE_FAILURES", "1"),
        ("MFTGW__LOGIN__DELAY_PER_FAILURE_MS", "10"),
        ("MFTGW__LOGIN__BLOCK_AFTER", "3"),
    ]);
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    let csrf = portal.get("/").await.csrf();
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let guess = format!("guess-number-{i}");
            portal
                .form_request("/login", &[("csrf", &csrf), ("password", &guess)])
                .send()
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in futures_util::future::join_all(guesses).await {
        statuses.push(guess.unwrap().status());
    }
    let evaluated = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let blocked = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (evaluated, blocked),
        (3, 27),
        "30 parallel guesses with a block after 3: {statuses:?}"
    );
}

#[tokio::test]
async fn an_older_certificate_cannot_replace_the_registered_one() {
    let demo = Demo::start();
    let older = demo.issue_certificate("portal-older", "voces", "97531864", "5");
    // Validity is counted in seconds: the newer one must end later.
    std::thread::sleep(Duration::from_millis(1100));
    let newer = demo.issue_certificate("portal-newer", "voces", "97531864", "5");
    let printed = demo.admin(&["user", "register", "--cert", newer.cert.to_str().unwrap()]);
    let gateway_password = printed
        .lines()
        .find_map(|line| line.strip_prefix("gateway password: "))
        .expect("the new user's password is printed")
        .to_string();

    let mut portal = Portal::new(&demo, &older);
    let csrf = portal.first_login(PASSWORD).await;
    let overview = portal.get("/").await;
    overview.assert(StatusCode::OK, "gyldigt længere end dette");
    assert!(
        !overview.body.contains("id=\"register\""),
        "no register button"
    );
    assert!(
        !overview.body.contains("gateway-password-value"),
        "no password shown"
    );
    let page = portal.post("/register", &[("csrf", &csrf)]).await;
    assert_eq!(page.location(), "/");
    demo.wait_for_audit(
        "portal.register_requested",
        "info",
        Some("nothing_to_register"),
    );
    // Over FTPS the newer certificate still works, the older one never did.
    let newer_user = DemoUser {
        password: gateway_password.clone(),
        ..newer
    };
    let (ok, _, err) = curl(&demo, &newer_user, "/", &["--list-only"]);
    assert!(ok, "the registered certificate no longer logs in: {err}");
    let older_user = DemoUser {
        password: gateway_password,
        ..older
    };
    let (ok, _, _) = curl(&demo, &older_user, "/", &["--list-only"]);
    assert!(!ok, "the older certificate was registered");
}

#[tokio::test]
async fn a_password_change_and_a_logout_end_sessions() {
    let demo = Demo::start();
    let certificate = demo.certificate("unregistered");
    let mut first = Portal::new(&demo, &certificate);
    let mut second = Portal::new(&demo, &certificate);
    first.first_login(PASSWORD).await;
    let csrf = second.get("/").await.csrf();
    let page = second
        .post("/login", &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(page.location(), "/");
    second
        .get("/")
        .await
        .assert(StatusCode::OK, "ikke registreret");

    // A change in the first browser ends the second's session.
    let changed = "Portal-Password-2";
    let page = first.change_password(PASSWORD, changed).await;
    assert_eq!(page.location(), "/?done=password", "{}", page.body);
    second
        .get("/")
        .await
        .assert(StatusCode::OK, "id=\"password\"");

    // A session cookie kept past logout opens nothing.
    let kept = first.cookies.clone();
    let csrf = first.get("/").await.csrf();
    first
        .post("/logout", &[("csrf", &csrf)])
        .await
        .assert(StatusCode::OK, "Du er logget af");
    first.cookies = kept;
    first
        .get("/")
        .await
        .assert(StatusCode::OK, "id=\"password\"");
    first
        .get("/out")
        .await
        .assert(StatusCode::OK, "id=\"password\"");
}
