//! Roles replicated from an HTTPS role source that wants a client certificate: folders
//! appear as the source grants them, stay while the source fails, and vanish when it drops
//! them; a role an operator granted locally stays whatever the source says.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::backend::{Mode, TestBackend};
use crate::support::{Demo, DemoUser, curl};

fn root(demo: &Demo, user: &DemoUser) -> Vec<String> {
    let (ok, names, err) = curl(demo, user, "/", &["--list-only"]);
    assert!(ok, "{err}");
    let mut names: Vec<String> = names.lines().map(str::to_string).collect();
    names.sort();
    names
}

fn wait_for_root(demo: &Demo, user: &DemoUser, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = root(demo, user);
        if names == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "root is {names:?}, expected {expected:?}\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn document(username: &str, services: &[&str]) -> serde_json::Value {
    serde_json::json!({ "roles": [{ "username": username, "services": services }] })
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_follow_the_role_source_and_survive_its_outage() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pki_dir = std::sync::Mutex::new(None);
    let demo = Demo::start_with_setup(&[], |data| {
        mftgw_testpki::TestPki::generate(&data.join("pki")).unwrap();
        *pki_dir.lock().unwrap() = Some(data.join("pki"));
    });
    let pki = pki_dir.lock().unwrap().clone().unwrap();
    let user = demo.user(3); // holds FTPSGW.Heartbeat, granted locally by the demo
    let source = TestBackend::start(&pki, addr, Mode::Accept).await;
    source.set_roles(document(
        &user.username,
        &["FATCA", "CPS", "NO_SUCH_SERVICE"],
    ));

    let identity = |name: &str| pki.join("clients").join(name);
    let role_source = format!(
        "{{ kind = \"http\", url = \"https://{addr}/roles\", ca_file = \"{}\", client_certificate = \"{}\", client_key = \"{}\" }}",
        Path::new(&pki).join("ca/root.pem").display(),
        identity("voces.pem").display(),
        identity("voces.key.pem").display(),
    );
    let mut demo = demo;
    demo.kill();
    demo.start_again(&[
        ("MFTGW__ROLES__SOURCE", &role_source),
        ("MFTGW__ROLES__POLL_SECS", "1"),
    ]);
    wait_for_root(&demo, &user, &["CPS", "FATCA", "FTPSGW.Heartbeat", "out"]);
    demo.wait_for_audit("roles.replicated", "info", None);

    // The source fails: once a poll has failed, nothing has changed.
    source.set_mode(Mode::Unavailable);
    source.set_roles(document(&user.username, &[]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !demo.log().contains("role replication failed") {
        assert!(Instant::now() < deadline, "no failed poll:\n{}", demo.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        root(&demo, &user),
        ["CPS", "FATCA", "FTPSGW.Heartbeat", "out"]
    );

    // It recovers without FATCA, and without the locally granted FTPSGW.Heartbeat.
    source.set_roles(document(&user.username, &["CPS"]));
    source.set_mode(Mode::Accept);
    wait_for_root(&demo, &user, &["CPS", "FTPSGW.Heartbeat", "out"]);
}
