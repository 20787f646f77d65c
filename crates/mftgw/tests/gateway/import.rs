//! `mftgw user import`: users moved from another installation are registered from a CSV or
//! JSON-lines file, each line whole or not at all, and importing again changes only what is
//! new. The imported certificates then log in on the legacy listener with their roles.

use std::process::Command;

use crate::support::{Demo, binary, curl_at, run};

const HEARTBEAT: &str = "FTPSGW.Heartbeat";
const TRAEK: &str = "BetalingsanmodningerTrækListeSend";
const ORG_UUID: &str = "0d9c8f4e-3b1a-4c55-9e21-7f00a1b2c3d4";

/// Runs `mftgw user import FILE`: whether it succeeded, stdout, stderr.
fn import(demo: &Demo, file: &std::path::Path) -> (bool, String, String) {
    run(Command::new(binary())
        .arg("--config")
        .arg(demo.config())
        .args(["user", "import"])
        .arg(file)
        .env("MFTGW_LOG", "warn"))
}

/// The DER of the certificate (the first of the PEM file, which holds the chain) as one
/// line of base64, as a CSV export carries it.
fn base64_der(pem: &std::path::Path) -> String {
    std::fs::read_to_string(pem)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect()
}

fn listed_users(demo: &Demo) -> Vec<String> {
    demo.admin(&["user", "list"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_import_registers_good_lines_whole_refuses_bad_ones_and_can_be_repeated() {
    let demo = Demo::start();
    let voces = demo.issue_certificate("moved-voces", "voces", "71000001", "1");
    let moces = demo.issue_certificate("moved-moces", "moces", "71000001", "2");
    let org = demo.issue_certificate("moved-org", "oces3-organisation", "72000002", ORG_UUID);
    let org_username = format!("CVR_72000002_UI_{ORG_UUID}");
    let pem = |user: &crate::support::DemoUser| std::fs::read_to_string(&user.cert).unwrap();

    // JSON lines, with a blank line, a certificate claimed under someone else's name, an
    // unknown role and a line that is not JSON.
    let lines = [
        serde_json::json!({"username": "CVR_71000001_UID_1", "certificate": pem(&voces), "roles": [HEARTBEAT]}).to_string(),
        String::new(),
        serde_json::json!({"username": "CVR_71000001_UID_1", "certificate": pem(&moces), "roles": [HEARTBEAT]}).to_string(),
        serde_json::json!({"username": org_username, "certificate": pem(&org), "roles": ["NoSuchService"]}).to_string(),
        "{\"username\": \"CVR_71000001_RID_2\", \"certificate\"".to_string(),
        serde_json::json!({"username": org_username, "certificate": pem(&org), "roles": [HEARTBEAT]}).to_string(),
    ];
    let jsonl = demo.dir.path().join("moved.jsonl");
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let (ok, out, err) = import(&demo, &jsonl);
    assert!(!ok, "refused lines make the import fail:\n{out}");
    assert!(err.contains("3 of 5 lines refused"), "{err}");
    let expected = [
        format!("line 1: registered CVR_71000001_UID_1, granted {HEARTBEAT}"),
        "line 3: refused: the certificate belongs to CVR_71000001_RID_2, not CVR_71000001_UID_1"
            .to_string(),
        "line 4: refused: role NoSuchService is not a service in the catalogue".to_string(),
        "line 5: refused: not a user object: EOF while parsing".to_string(),
        format!("line 6: registered {org_username}, granted {HEARTBEAT}"),
        "5 lines: 2 registered, 0 renewed, 0 already registered, 3 refused".to_string(),
    ];
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), expected.len(), "{out}");
    for (printed, expected) in printed.iter().zip(&expected) {
        assert!(
            printed.starts_with(expected.as_str()),
            "{printed:?} is not {expected:?}"
        );
    }
    let users = listed_users(&demo);
    assert!(
        users.contains(&format!("CVR_71000001_UID_1\tvoces\tactive\t{HEARTBEAT}")),
        "{users:?}"
    );
    assert!(
        users.contains(&format!(
            "{org_username}\toces3-organisation\tactive\t{HEARTBEAT}"
        )),
        "the refused line 4 granted nothing: {users:?}"
    );
    assert!(
        !users
            .iter()
            .any(|line| line.starts_with("CVR_71000001_RID_2")),
        "nothing of a refused line is stored: {users:?}"
    );
    demo.wait_for_audit("admin.import", "allowed", None);

    // The imported users log in at once, by certificate, and see their roles.
    let (ok, listing, err) = curl_at(
        &demo,
        demo.legacy_port(),
        &voces,
        "/",
        &["--list-only", "-u", "anonymous:guest"],
    );
    assert!(ok, "{err}");
    assert_eq!(listing.lines().collect::<Vec<_>>(), [HEARTBEAT]);

    // The same users again as CSV: a role added to one, the refused certificate corrected.
    let csv = demo.dir.path().join("moved.csv");
    std::fs::write(
        &csv,
        format!(
            "username,certificate,roles\n\
             CVR_71000001_UID_1,{},{HEARTBEAT};{TRAEK}\n\
             CVR_71000001_RID_2,{},{HEARTBEAT}\n\
             {org_username},{},{HEARTBEAT}\n",
            base64_der(&voces.cert),
            base64_der(&moces.cert),
            base64_der(&org.cert),
        ),
    )
    .unwrap();
    let (ok, out, err) = import(&demo, &csv);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("line 2: already registered CVR_71000001_UID_1, granted {TRAEK}"),
            format!("line 3: registered CVR_71000001_RID_2, granted {HEARTBEAT}"),
            format!("line 4: already registered {org_username}"),
            "3 lines: 1 registered, 0 renewed, 2 already registered, 0 refused".to_string(),
        ]
    );

    // Once more: nothing changes.
    let before = listed_users(&demo);
    let (ok, out, err) = import(&demo, &csv);
    assert!(ok, "{out}{err}");
    assert!(
        out.ends_with("3 lines: 0 registered, 0 renewed, 3 already registered, 0 refused\n"),
        "{out}"
    );
    assert!(!out.contains("granted"), "{out}");
    assert_eq!(listed_users(&demo), before);
    assert!(
        before.contains(&format!(
            "CVR_71000001_UID_1\tvoces\tactive\t{TRAEK},{HEARTBEAT}"
        )),
        "{before:?}"
    );
}

#[test]
fn a_file_that_names_no_users_is_refused_whole() {
    let demo = Demo::start();
    let file = demo.dir.path().join("bad.csv");
    std::fs::write(&file, "user,cert\nCVR_71000001_UID_1,MAMCAQE=\n").unwrap();
    let (ok, out, err) = import(&demo, &file);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("line 1: the CSV header names the column \"user\""),
        "{err}"
    );
    let missing = demo.dir.path().join("missing.csv");
    let (ok, _, err) = import(&demo, &missing);
    assert!(!ok && err.contains("missing.csv"), "{err}");
}
