//! The operator CLI against a running gateway: registering a certificate prints a gateway
//! password that works at once (demo activation delay 0), roles granted and revoked show up in
//! the user's next listing, suspension locks the user out, and a renewal keeps the password.

use crate::support::{Demo, DemoUser};
use mftgw_client::FtpsClient;
use mftgw_testpki::TestPki;

async fn root_names(client: &mut FtpsClient) -> Vec<String> {
    let listing = String::from_utf8(client.download("NLST /").await.unwrap()).unwrap();
    let mut names: Vec<String> = listing.lines().map(str::to_string).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_grant_revoke_suspend_and_renew_from_the_cli() {
    let demo = Demo::start();
    let mut user = demo.certificate("unregistered");
    let printed = demo.admin(&["user", "register", "--cert", user.cert.to_str().unwrap()]);
    let mut lines = printed.lines();
    assert_eq!(
        lines.next(),
        Some("registered CVR_55667788_UID_3"),
        "{printed}"
    );
    user.username = "CVR_55667788_UID_3".into();
    user.password = lines
        .next()
        .and_then(|l| l.strip_prefix("gateway password: "))
        .expect("password line")
        .to_string();
    assert!(user.password.len() >= 20);

    let mut client = demo
        .try_login(&user)
        .await
        .expect("login with the printed password");
    assert_eq!(root_names(&mut client).await, ["out"]);

    demo.admin(&["role", "grant", &user.username, "FTPSGW.Heartbeat"]);
    demo.admin(&[
        "role",
        "grant",
        &user.username,
        "BetalingsanmodningerTrækListeSend",
    ]);
    assert_eq!(
        root_names(&mut client).await,
        [
            "BetalingsanmodningerTrækListeSend",
            "FTPSGW.Heartbeat",
            "out"
        ]
    );
    assert_eq!(
        client.command("CWD FTPSGW.Heartbeat").await.unwrap().code,
        250
    );
    demo.admin(&["role", "revoke", &user.username, "FTPSGW.Heartbeat"]);
    assert_eq!(
        client.command("CWD /FTPSGW.Heartbeat").await.unwrap().code,
        550
    );
    assert_eq!(
        root_names(&mut client).await,
        ["BetalingsanmodningerTrækListeSend", "out"]
    );
    let listed = demo.admin(&["user", "list"]);
    assert!(
        listed.contains("CVR_55667788_UID_3\tvoces\tactive\tBetalingsanmodningerTrækListeSend"),
        "{listed}"
    );

    demo.admin(&["user", "suspend", &user.username]);
    assert!(demo.try_login(&user).await.is_err());
    demo.wait_for_audit("ftps.login", "refused", Some("suspended"));
    demo.admin(&["user", "activate", &user.username]);
    demo.try_login(&user)
        .await
        .expect("login after reactivation");

    // Renewal: a new certificate for the same account keeps the gateway password.
    let pki_dir = demo.data_dir().join("pki");
    let issued = demo.admin(&[
        "pki",
        "issue",
        pki_dir.to_str().unwrap(),
        "unregistered-renewed",
        "--kind",
        "voces",
        "--cvr",
        "55667788",
        "--id",
        "3",
    ]);
    assert!(issued.contains("unregistered-renewed.pem"), "{issued}");
    let renewed = TestPki::load(&pki_dir)
        .unwrap()
        .client("unregistered-renewed")
        .unwrap()
        .clone();
    let printed = demo.admin(&[
        "user",
        "register",
        "--cert",
        renewed.cert_pem.to_str().unwrap(),
    ]);
    assert_eq!(
        printed.trim(),
        "renewed CVR_55667788_UID_3: the gateway password is unchanged"
    );
    let renewed_user = DemoUser {
        cert: renewed.cert_pem,
        key: renewed.key_pem,
        ..user.clone()
    };
    demo.try_login(&renewed_user)
        .await
        .expect("renewed certificate, same password");
    assert!(
        demo.try_login(&user).await.is_err(),
        "the replaced certificate must not log in"
    );
    demo.wait_for_audit("ftps.login", "refused", Some("replaced_certificate"));
    demo.wait_for_audit("admin.renew", "allowed", None);
}

#[test]
fn the_cli_refuses_what_it_cannot_do_with_a_clear_error() {
    let demo = Demo::start();
    let failing = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::binary())
            .arg("--config")
            .arg(demo.config())
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let foces = demo.certificate("foces");
    let error = failing(&["user", "register", "--cert", foces.cert.to_str().unwrap()]);
    assert!(error.contains("foces_unsupported"), "{error}");
    let expired = demo.certificate("expired");
    let error = failing(&["user", "register", "--cert", expired.cert.to_str().unwrap()]);
    assert!(error.contains("expired"), "{error}");
    let user = demo.user(0);
    let error = failing(&["role", "grant", &user.username, "NoSuchService"]);
    assert!(error.contains("not a service in the catalogue"), "{error}");
    let error = failing(&["role", "grant", "CVR_00000000_UID_0", "FTPSGW.Heartbeat"]);
    assert!(error.contains("no user CVR_00000000_UID_0"), "{error}");
}
