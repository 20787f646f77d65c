//! The Certificate Portal over HTTP: every form's bad input (overlong, wrong types, script in
//! the fields, missing CSRF token), the registration job, sessions, throttling and headers,
//! with a real TLS client certificate against `mftgw demo`. The browser walk-through is in
//! `portal_browser.rs`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use support::{Demo, DemoUser, curl};

/// A browser-like client of the portal: one certificate, a cookie jar, no redirects followed.
struct Portal {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    username: String,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The first CSRF token in the page's forms.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .expect("the page has a form with a CSRF token")
            + marker.len();
        self.body[start..start + 64].to_string()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|value| value.to_str().unwrap())
            .unwrap_or("")
    }

    fn assert(&self, status: StatusCode, contains: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.body.contains(contains),
            "the page does not say {contains:?}:\n{}",
            self.body
        );
    }
}

impl Portal {
    fn new(demo: &Demo, user: &DemoUser) -> Portal {
        let tls = (*demo.tls(user)).clone();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Portal {
            client,
            base: demo.portal_url(),
            cookies: BTreeMap::new(),
            username: support::username_of(&user.cert),
        }
    }

    /// The request with this client's cookies.
    fn with_cookies(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        }
    }

    /// A `POST` of `form`, urlencoded, with this client's cookies.
    fn form_request(&self, path: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.with_cookies(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = self.with_cookies(request);
        let response = request.send().await.expect("the portal answers");
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.form_request(path, form);
        self.send(request).await
    }

    /// `POST /password` from `current` to `new` (twice); returns the answer.
    async fn change_password(&mut self, current: &str, new: &str) -> Page {
        let csrf = self.get("/password").await.csrf();
        self.post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await
    }

    /// First login with the username, then the forced change to `password`; returns the
    /// overview's CSRF token.
    async fn first_login(&mut self, password: &str) -> String {
        let csrf = self.get("/").await.csrf();
        let username = self.username.clone();
        let page = self
            .post("/login", &[("csrf", &csrf), ("password", &username)])
            .await;
        assert_eq!(page.location(), "/password", "{}", page.body);
        let page = self.change_password(&username, password).await;
        assert_eq!(page.location(), "/?done=password", "{}", page.body);
        self.get("/").await.csrf()
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                char::from(byte).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

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

#[tokio::test]
async fn registering_twice_queues_once_and_a_revoked_certificate_registers_but_cannot_use_ftps() {
    let demo = Demo::start();
    let revoked = demo.issue_certificate("portal-revoked", "moces", "13572468", "77");
    demo.revoke_in_pki("portal-revoked");
    demo.signal("HUP");

    let mut portal = Portal::new(&demo, &revoked);
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
    let deadline = Instant::now() + Duration::from_secs(20);
    let overview = loop {
        let page = portal.get("/").await;
        if page.body.contains("klar til brug") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "registration never finished:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let marker = "id=\"gateway-password-value\">";
    let start = overview.body.find(marker).unwrap() + marker.len();
    let password = overview.body[start..start + 24].to_string();

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

    // FTPS checks the CRL: the registered, revoked certificate is refused in the handshake.
    let user = DemoUser {
        password,
        ..revoked
    };
    let (ok, _, _) = curl(&demo, &user, "/", &["--list-only"]);
    assert!(!ok, "a revoked certificate logged in over FTPS");
    demo.wait_for_audit("ftps.tls", "refused", Some("certificate_revoked"));
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
        let (_, out, err) = support::run(
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
