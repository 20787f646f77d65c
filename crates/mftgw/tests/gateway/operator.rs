//! The operator surface over HTTPS: health and readiness, Prometheus metrics that follow what
//! users do, and the admin API (users, roles, services, deliveries) behind the operators'
//! token, every action in the audit log.

use std::time::{Duration, Instant};

use crate::support::{Demo, curl, heartbeat_files, wait_for_out};
use serde_json::Value;

const MANIFEST: &str = "Manifest.MidlertidigOpbevaringOpret";
const TOKEN: &str = "operators-secret";

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    /// The demo's API on `addr`, trusting the demo's CA.
    fn https(addr: std::net::SocketAddr, demo: &Demo) -> Http {
        let ca = std::fs::read(demo.ca()).unwrap();
        Http {
            base: format!("https://{addr}"),
            client: reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .build()
                .unwrap(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let (status, text) = self.send(method, path, Some(TOKEN)).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}")),
        )
    }
}

/// The value of the metric line starting with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_the_admin_api() {
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = format!(
        "[{{ name = \"down\", kind = \"simulated\", behaviour = \"down\", services = [\"{MANIFEST}\"] }}]"
    );
    let demo = Demo::start_with_env(&[
        ("MFTGW__API__LISTEN", &api.to_string()),
        ("MFTGW__API__ADMIN_TOKEN", TOKEN),
        ("MFTGW__DELIVERY__BACKENDS", &down),
        ("MFTGW__DELIVERY__RETRY_FIRST_MS", "60000"),
        ("MFTGW__API__METRICS_REFRESH_SECS", "1"),
    ]);
    let http = Http::https(api, &demo);
    assert_eq!(
        http.send(reqwest::Method::GET, "/healthz", None).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        http.send(reqwest::Method::GET, "/readyz", None).await,
        (200, "ready\n".into())
    );

    // Users do things; the metrics follow.
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    client
        .upload("/FTPSGW.Heartbeat/m-1.xml", b"<ping/>")
        .await
        .unwrap();
    client
        .upload(&format!("/{MANIFEST}/waits.xml"), b"<decl/>")
        .await
        .unwrap();
    let (ok, _, _) = curl(
        &demo,
        &user,
        "/",
        &["-u", &format!("{}:wrong", user.username)],
    );
    assert!(!ok);
    wait_for_out(&demo, &user, &heartbeat_files("m-1.xml"));
    let expected = [
        ("mftgw_ftps_logins_total{outcome=\"refused\"}", 1.0),
        ("mftgw_ftps_sessions", 1.0),
        ("mftgw_uploads_total{outcome=\"transaction\"}", 2.0),
        ("mftgw_upload_bytes_total", 14.0),
        ("mftgw_status_files_total{status=\"1\"}", 1.0),
        ("mftgw_status_files_total{status=\"3\"}", 1.0),
        ("mftgw_transactions{state=\"answered\"}", 1.0),
        ("mftgw_transactions{state=\"received\"}", 1.0),
        (
            &format!("mftgw_delivery_backlog{{service=\"{MANIFEST}\"}}"),
            1.0,
        ),
        (
            &format!("mftgw_delivery_attempts_total{{service=\"{MANIFEST}\",outcome=\"failed\"}}"),
            1.0,
        ),
    ];
    // The gauges of the store's counts follow at their next refresh (a second here).
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (status, text) = http.send(reqwest::Method::GET, "/metrics", None).await;
        assert_eq!(status, 200);
        let all = expected
            .iter()
            .all(|(line, value)| metric(&text, line) == Some(*value));
        if all || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The client above, and curl each time `wait_for_out` looked; only the client is still on.
    let allowed = metric(&metrics, "mftgw_ftps_logins_total{outcome=\"allowed\"}").unwrap();
    assert!(allowed >= 2.0, "{metrics}");
    for (line, value) in &expected {
        assert_eq!(metric(&metrics, line), Some(*value), "{line} in\n{metrics}");
    }

    // The admin API needs the operators' token.
    assert_eq!(
        http.send(reqwest::Method::GET, "/v1/admin/users", None)
            .await
            .0,
        401
    );
    assert_eq!(
        http.send(reqwest::Method::GET, "/v1/admin/users", Some("guess"))
            .await
            .0,
        401
    );
    let (status, users) = http.admin(reqwest::Method::GET, "/v1/admin/users").await;
    assert_eq!(status, 200);
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == user.username.as_str())
    );
    let path = format!("/v1/admin/users/{}/certificates", user.username);
    let (status, certificates) = http.admin(reqwest::Method::GET, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        certificates["certificates"][0]["fingerprint_sha256"],
        crate::support::fingerprint_of(&user.cert).as_str()
    );
    assert!(certificates["certificates"][0]["replaced_at"].is_null());
    let unknown = "/v1/admin/users/CVR_0_UID_0/certificates";
    assert_eq!(http.admin(reqwest::Method::GET, unknown).await.0, 404);
    let (status, services) = http.admin(reqwest::Method::GET, "/v1/admin/services").await;
    assert_eq!(status, 200);
    assert!(
        services["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "AKFA")
    );

    // Roles: grant, see the folder, revoke; bad service and unknown user are refused.
    let other = demo.user(3);
    let roles = format!("/v1/admin/users/{}/roles", other.username);
    assert_eq!(
        http.admin(reqwest::Method::PUT, &format!("{roles}/FATCA"))
            .await
            .0,
        200
    );
    let (ok, root, _) = curl(&demo, &other, "/", &["--list-only"]);
    assert!(ok && root.lines().any(|name| name == "FATCA"), "{root}");
    let (status, held) = http.admin(reqwest::Method::GET, &roles).await;
    assert_eq!(
        (status, held["services"].clone()),
        (200, serde_json::json!(["FATCA", "FTPSGW.Heartbeat"]))
    );
    assert_eq!(
        http.admin(reqwest::Method::DELETE, &format!("{roles}/FATCA"))
            .await
            .0,
        200
    );
    assert_eq!(
        http.admin(reqwest::Method::PUT, &format!("{roles}/NOPE"))
            .await
            .0,
        400
    );
    assert_eq!(
        http.admin(
            reqwest::Method::PUT,
            "/v1/admin/users/CVR_0_UID_0/roles/FATCA"
        )
        .await
        .0,
        404
    );

    // Suspend and activate: the FTPS login follows.
    let path = format!("/v1/admin/users/{}/suspend", other.username);
    assert_eq!(http.admin(reqwest::Method::POST, &path).await.0, 200);
    assert!(
        !curl(&demo, &other, "/", &["--list-only"]).0,
        "a suspended user logged in"
    );
    let path = format!("/v1/admin/users/{}/activate", other.username);
    assert_eq!(http.admin(reqwest::Method::POST, &path).await.0, 200);
    assert!(curl(&demo, &other, "/", &["--list-only"]).0);

    // Deliveries: the one waiting for the down backend, retried at once.
    let (status, waiting) = http
        .admin(reqwest::Method::GET, "/v1/admin/deliveries")
        .await;
    assert_eq!(status, 200);
    let waiting = waiting["deliveries"].as_array().unwrap().clone();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["last_error"], "the simulated backend is down");
    let id = waiting[0]["skat_transaction_id"].as_str().unwrap();
    assert_eq!(
        http.admin(
            reqwest::Method::POST,
            &format!("/v1/admin/deliveries/{id}/retry")
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http.admin(reqwest::Method::POST, "/v1/admin/deliveries/ci0_0_0/retry")
            .await
            .0,
        404
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, now) = http
            .admin(reqwest::Method::GET, "/v1/admin/deliveries")
            .await;
        if now["deliveries"][0]["attempts"].as_u64() == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "the retry did not happen: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A transaction the backend never took cannot be replayed; one it took can.
    let replay = format!("/v1/admin/transactions/{id}/replay");
    assert_eq!(http.admin(reqwest::Method::POST, &replay).await.0, 400);
    let heartbeat = demo
        .transactions(&user.username)
        .into_iter()
        .find(|t| t["service"] == "FTPSGW.Heartbeat")
        .unwrap();
    let replay = format!(
        "/v1/admin/transactions/{}/replay",
        heartbeat["skat_transaction_id"].as_str().unwrap()
    );
    assert_eq!(http.admin(reqwest::Method::POST, &replay).await.0, 200);

    for action in [
        "admin.grant_role",
        "admin.revoke_role",
        "admin.set_state",
        "admin.retry_delivery",
        "admin.replay_delivery",
    ] {
        demo.wait_for_audit(action, "allowed", None);
    }
}

/// Review item 13: `/metrics` can ask for a token, and can be served on a plain-HTTP
/// listener of its own; either way a scrape reads gauges kept up to date in the background,
/// not the store (its statements are in the log: none per scrape).
#[tokio::test(flavor = "multi_thread")]
async fn metrics_ask_for_their_token_and_cost_the_store_nothing_per_scrape() {
    let [api, monitoring] = [0, 1].map(|_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    });
    let demo = Demo::start_with_env(&[
        ("MFTGW__API__LISTEN", &api.to_string()),
        ("MFTGW__API__METRICS_TOKEN", "scraper-secret"),
        ("MFTGW__API__METRICS_LISTEN", &monitoring.to_string()),
        ("MFTGW__API__METRICS_REFRESH_SECS", "3600"),
        ("MFTGW_LOG", "info,sqlx::query=debug"),
    ]);
    let https = Http::https(api, &demo);
    assert_eq!(
        https.send(reqwest::Method::GET, "/metrics", None).await.0,
        401
    );
    assert_eq!(
        https
            .send(reqwest::Method::GET, "/metrics", Some("wrong"))
            .await
            .0,
        401
    );
    let plain = Http {
        base: format!("http://{monitoring}"),
        client: reqwest::Client::new(),
    };
    assert_eq!(
        plain.send(reqwest::Method::GET, "/healthz", None).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        plain
            .send(reqwest::Method::GET, "/v1/admin/users", None)
            .await
            .0,
        404
    );
    let counted = |log: &str| log.matches("FROM transactions GROUP BY state").count();
    // The gauges are read once at start.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counted(&demo.log()) == 0 {
        assert!(Instant::now() < deadline, "the gauges were never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = counted(&demo.log());
    for _ in 0..20 {
        let (status, text) = https
            .send(reqwest::Method::GET, "/metrics", Some("scraper-secret"))
            .await;
        assert_eq!(status, 200);
        assert!(
            text.contains("mftgw_transactions{state=\"received\"}"),
            "{text}"
        );
        let (status, text) = plain
            .send(reqwest::Method::GET, "/metrics", Some("scraper-secret"))
            .await;
        assert_eq!(status, 200);
        assert!(text.contains("mftgw_transactions"), "{text}");
    }
    assert_eq!(counted(&demo.log()), before, "scrapes queried the store");
}

/// An operator's own service catalogue (`[services] file`): its services are offered by the
/// admin API and `mftgw services`, can be granted and appear as folders; a catalogue that
/// is not valid stops the gateway with an error that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_service_catalogue_replaces_the_built_in_one() {
    let builtin = include_str!("../../../domain/services.toml");
    let catalogue_dir = tempfile::tempdir().unwrap();
    let catalogue = catalogue_dir.path().join("services.toml");
    std::fs::write(
        &catalogue,
        format!("{builtin}\n[[system]]\nname = \"Pilot\"\nservices = [\"PILOT\"]\n"),
    )
    .unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let demo = Demo::start_with_env(&[
        ("MFTGW__API__LISTEN", &api.to_string()),
        ("MFTGW__API__ADMIN_TOKEN", TOKEN),
        ("MFTGW__SERVICES__FILE", catalogue.to_str().unwrap()),
    ]);
    let http = Http::https(api, &demo);
    let (status, services) = http.admin(reqwest::Method::GET, "/v1/admin/services").await;
    assert_eq!(status, 200);
    assert!(
        services["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "PILOT" && s["system"] == "Pilot"),
        "{services}"
    );
    let user = demo.user(3);
    let grant = format!("/v1/admin/users/{}/roles/PILOT", user.username);
    assert_eq!(http.admin(reqwest::Method::PUT, &grant).await.0, 200);
    let (ok, root, _) = curl(&demo, &user, "/", &["--list-only"]);
    assert!(ok && root.lines().any(|name| name == "PILOT"), "{root}");

    // The CLI reads the catalogue from the config file.
    let config = catalogue_dir.path().join("mftgw.toml");
    let with_catalogue = |file: &std::path::Path| {
        let text = std::fs::read_to_string(demo.config()).unwrap();
        let mut table: toml::Table = toml::from_str(&text).unwrap();
        let services = toml::Table::from_iter([(
            "file".to_string(),
            toml::Value::String(file.to_str().unwrap().into()),
        )]);
        table.insert("services".into(), toml::Value::Table(services));
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    };
    with_catalogue(&catalogue);
    let listed = crate::support::run(
        std::process::Command::new(crate::support::binary())
            .arg("--config")
            .arg(&config)
            .arg("services"),
    );
    assert!(
        listed.0 && listed.1.lines().any(|line| line == "Pilot\tPILOT"),
        "{listed:?}"
    );

    let broken = catalogue_dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[[system]]\nname = \"A\"\nservices = [\"X\"]\n[[system]]\nname = \"B\"\nservices = [\"X\"]\n",
    )
    .unwrap();
    with_catalogue(&broken);
    for command in ["services", "serve"] {
        let (ok, _, stderr) = crate::support::run(
            std::process::Command::new(crate::support::binary())
                .arg("--config")
                .arg(&config)
                .arg(command)
                .env("MFTGW_LOG", "warn"),
        );
        assert!(!ok, "{command} started with a broken catalogue");
        assert!(
            stderr.contains("broken.toml") && stderr.contains("listed more than once"),
            "{command}: {stderr}"
        );
    }
}
