//! The heartbeat journey of issue 3 with real clients: an upload into `FTPSGW.Heartbeat`
//! is answered in `/out` with status 1, status 2, a response file and status 3, exactly as
//! the client guide shows them; a reused name gets a status_0; status files are downloaded
//! and deleted; another user sees none of it.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{
    Demo, DemoUser, curl, heartbeat_files, out_names, run, wait_for_out, xml_element,
};
use mftgw_domain::status::{StatusCode, StatusFile, copenhagen_timestamp};
use time::OffsetDateTime;

const HEARTBEAT: &str = "FTPSGW.Heartbeat";

fn stamp() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    millis.to_string()
}

/// `/CVR_<cvr>/<account>` of a username `CVR_<cvr>_<account>`.
fn user_prefix(user: &DemoUser) -> String {
    let rest = user.username.strip_prefix("CVR_").unwrap();
    let (cvr, account) = rest.split_once('_').unwrap();
    format!("/CVR_{cvr}/{account}")
}

fn download(demo: &Demo, user: &DemoUser, name: &str) -> String {
    let (ok, body, err) = curl(demo, user, &format!("/out/{name}"), &[]);
    assert!(ok, "downloading {name}: {err}");
    body
}

/// The status file the gateway must have written, rendered by the domain crate, compared
/// byte for byte with what was downloaded, apart from the timestamp (checked to fall
/// between `from` and `to` in Copenhagen time).
fn assert_status_file(
    downloaded: &str,
    expected: StatusFile,
    from: OffsetDateTime,
    to: OffsetDateTime,
) {
    let timestamp = xml_element(downloaded, "timestamp").expect("a timestamp");
    let earliest = copenhagen_timestamp(from - time::Duration::SECOND);
    let latest = copenhagen_timestamp(to + time::Duration::SECOND);
    assert!(
        earliest <= timestamp && timestamp <= latest,
        "timestamp {timestamp} not within {earliest}..{latest}"
    );
    let rendered = expected.to_xml();
    let rendered_timestamp = xml_element(&rendered, "timestamp").unwrap();
    assert_eq!(
        downloaded.replace(&timestamp, "TIMESTAMP"),
        rendered.replace(&rendered_timestamp, "TIMESTAMP"),
    );
}

#[test]
fn curl_heartbeat_journey_reuse_download_and_delete() {
    let demo = Demo::start();
    let user = demo.user(0);
    let other = demo.user(1);
    let name = format!("ping{}-hb01.xml", stamp());
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();

    let start = OffsetDateTime::now_utc();
    let (ok, _, log) = curl(
        &demo,
        &user,
        &format!("/{HEARTBEAT}/{name}"),
        &["-v", "-T", body.to_str().unwrap()],
    );
    assert!(ok, "upload failed: {log}");
    let reply = log
        .lines()
        .find(|line| line.starts_with("< 226 "))
        .unwrap_or_else(|| panic!("no 226 in:\n{log}"));
    let skat_id = reply
        .strip_prefix("< 226 Transfer complete: transaction ")
        .unwrap_or_else(|| panic!("unexpected 226 text: {reply}"))
        .trim()
        .to_string();

    // The upload is processed at once: the service folder is empty.
    let (ok, listing, err) = curl(&demo, &user, &format!("/{HEARTBEAT}/"), &[]);
    assert!(ok, "{err}");
    assert_eq!(listing, "");

    let expected = heartbeat_files(&name);
    let out = wait_for_out(&demo, &user, &expected);
    let end = OffsetDateTime::now_utc();
    assert_eq!(out, expected, "files appear in the order 1, 2, response, 3");

    let upload_path = format!("{}/{HEARTBEAT}/{name}", user_prefix(&user));
    let status = |code, response_file: Option<String>| StatusFile {
        code,
        service: HEARTBEAT.parse().unwrap(),
        ftp_transaction_id: name.clone(),
        upload_path: Some(upload_path.clone()),
        skat_transaction_id: Some(skat_id.parse().unwrap()),
        at: start,
        response_file,
        error: None,
    };
    let response_name = format!("FTPSGW.Heartbeat_in_{name}_response.txt");
    assert_status_file(
        &download(&demo, &user, &expected[0]),
        status(StatusCode::Delivered, None),
        start,
        end,
    );
    assert_status_file(
        &download(&demo, &user, &expected[1]),
        status(StatusCode::Accepted, None),
        start,
        end,
    );
    assert_status_file(
        &download(&demo, &user, &expected[3]),
        status(StatusCode::Exposed, Some(response_name.clone())),
        start,
        end,
    );
    let response = download(&demo, &user, &response_name);
    assert!(
        response.contains(&name) && response.contains(&skat_id),
        "{response}"
    );

    let transactions = demo.transactions(&user.username);
    assert_eq!(transactions.len(), 1);
    assert_eq!(transactions[0]["skat_transaction_id"], skat_id.as_str());
    assert_eq!(transactions[0]["state"], "answered");
    assert_eq!(transactions[0]["size"], 8);
    let history: Vec<&str> = transactions[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["1", "2", "3"]);

    // The same name again: a status_0, and nothing else happens.
    let (ok, _, log) = curl(
        &demo,
        &user,
        &format!("/{HEARTBEAT}/{name}"),
        &["-v", "-T", body.to_str().unwrap()],
    );
    assert!(ok, "{log}");
    let status_0 = format!("status_FTPSGW.Heartbeat_{name}_0.xml");
    assert!(log.contains(&format!("< 226 Transfer complete, but the name was used before and is not accepted: see /out/{status_0}")), "{log}");
    let xml = download(&demo, &user, &status_0);
    assert_eq!(
        xml_element(&xml, "error.code").as_deref(),
        Some("FILENAME_CANNOT_BE_REUSED_FOR_TRANSACTION")
    );
    assert_eq!(xml_element(&xml, "filename"), Some(upload_path.clone()));
    assert_eq!(xml_element(&xml, "SKATTransactionId"), None);
    // A later heartbeat answered proves the worker has passed the reuse: it added nothing.
    let later = format!("later-{name}");
    let (ok, _, log) = curl(
        &demo,
        &user,
        &format!("/{HEARTBEAT}/{later}"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "{log}");
    let mut with_status_0 = expected.clone();
    with_status_0.push(status_0.clone());
    with_status_0.extend(heartbeat_files(&later));
    wait_for_out(&demo, &user, &with_status_0);
    assert_eq!(out_names(&demo, &user), with_status_0);
    assert_eq!(demo.transactions(&user.username).len(), 2);

    // Another user sees none of it.
    assert!(out_names(&demo, &other).is_empty());
    let (ok, _, _) = curl(&demo, &other, &format!("/out/{status_0}"), &[]);
    assert!(!ok, "another user downloaded a status file");

    // Download and delete every file, as an integrator's poller does.
    for file in &with_status_0 {
        let target = demo.dir.path().join("downloaded");
        let (ok, _, err) = curl(
            &demo,
            &user,
            &format!("/out/{file}"),
            &[
                "-o",
                target.to_str().unwrap(),
                "-Q",
                &format!("-DELE /out/{file}"),
            ],
        );
        assert!(ok, "download + delete {file}: {err}");
        assert!(std::fs::metadata(&target).unwrap().len() > 0);
    }
    assert!(out_names(&demo, &user).is_empty());
    let (ok, _, _) = curl(&demo, &user, &format!("/out/{status_0}"), &[]);
    assert!(!ok, "a deleted file could still be downloaded");
}

#[test]
fn lftp_uploads_binary_and_ascii_and_fetches_the_answers() {
    let demo = Demo::start();
    let user = demo.user(1);
    let stamp = stamp();
    let binary = format!("ping{stamp}-lftp-bin.xml");
    let ascii = format!("ping{stamp}-lftp-ascii.txt");
    let source = demo.dir.path().join("source.txt");
    std::fs::write(&source, "first line\nsecond line\n").unwrap();
    let lftp = |commands: &str| {
        let script = format!(
            "set net:max-retries 1; set net:timeout 20; set ftp:ssl-force true; \
             set ftp:ssl-protect-data true; set ssl:ca-file {ca}; set ssl:cert-file {cert}; \
             set ssl:key-file {key}; open -u '{name},{password}' ftp://127.0.0.1:{port}; {commands}; quit",
            ca = demo.ca().display(),
            cert = user.cert.display(),
            key = user.key.display(),
            name = user.username,
            password = user.password,
            port = demo.port,
        );
        let (ok, out, err) = run(Command::new("timeout").args(["90", "lftp", "-c", &script]));
        assert!(ok, "lftp {commands} failed:\n{out}\n{err}\n{}", demo.log());
        out
    };
    lftp(&format!(
        "cd {HEARTBEAT}; put {src} -o '{binary}'; put -a {src} -o '{ascii}'; echo ==LS; ls",
        src = source.display()
    ));
    let mut expected = heartbeat_files(&binary);
    expected.extend(heartbeat_files(&ascii));
    wait_for_out(&demo, &user, &expected);

    let transactions = demo.transactions(&user.username);
    let transfer_type = |name: &str| {
        transactions
            .iter()
            .find(|t| t["ftp_transaction_id"] == name)
            .unwrap_or_else(|| panic!("no transaction {name}: {transactions:?}"))["transfer_type"]
            .clone()
    };
    assert_eq!(transfer_type(&binary), "I");
    assert_eq!(transfer_type(&ascii), "A");

    let fetched = demo.dir.path().join("fetched");
    std::fs::create_dir(&fetched).unwrap();
    let out = lftp(&format!(
        "cd /out; lcd {dir}; mget status_*; echo ==BEFORE; cls -1; mrm status_*; cache flush; echo ==AFTER; cls -1",
        dir = fetched.display()
    ));
    let section = |marker: &str| -> Vec<String> {
        out.split(&format!("=={marker}\n"))
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|line| !line.starts_with("=="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(section("BEFORE").len(), 8, "{out}");
    // lftp sorts what it lists.
    assert_eq!(
        section("AFTER"),
        [
            format!("FTPSGW.Heartbeat_in_{ascii}_response.txt"),
            format!("FTPSGW.Heartbeat_in_{binary}_response.txt"),
        ],
        "{out}"
    );
    let status_3 =
        std::fs::read_to_string(fetched.join(format!("status_FTPSGW.Heartbeat_{ascii}_3.xml")))
            .unwrap();
    assert_eq!(
        xml_element(&status_3, "FTPTransaktionsId"),
        Some(ascii.clone())
    );
    assert_eq!(
        xml_element(&status_3, "status.code").as_deref(),
        Some("File exposed")
    );
}

#[test]
fn python_ftplib_uploads_every_kind_and_reads_out() {
    let demo = Demo::start();
    let user = demo.user(2);
    let (ok, out, err) = demo.python("ftplib_transactions.py", &user, &[&stamp()]);
    assert!(ok, "ftplib failed:\n{err}\n{}", demo.log());
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = |key: &str| {
        result[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {result}"))
            .to_string()
    };
    let names = &result["names"];
    let name = |key: &str| names[key].as_str().unwrap().to_string();

    for key in [
        "stor_binary",
        "stor_ascii",
        "stor_empty",
        "stor_danish",
        "stor_txid",
    ] {
        assert!(
            text(key).starts_with("226 Transfer complete: transaction ci"),
            "{key}: {}",
            text(key)
        );
    }
    assert_eq!(result["list_with_txid"], serde_json::json!([name("txid")]));
    assert_eq!(
        result["list_after"],
        serde_json::json!([]),
        "the transaction folder vanishes with the upload"
    );
    assert!(
        text("size_uploaded").starts_with("550"),
        "{}",
        text("size_uploaded")
    );

    let out_listing: Vec<String> = serde_json::from_value(result["out"].clone()).unwrap();
    for key in ["binary", "ascii", "empty", "danish", "txid"] {
        for file in heartbeat_files(&name(key)) {
            assert!(
                out_listing.contains(&file),
                "{file} missing from {out_listing:?}"
            );
        }
    }
    assert_eq!(out_listing.len(), 20);
    // `LIST` as FileZilla, WinSCP and lftp parse `ls -l` lines: eight fields, then the name,
    // spaces and all.
    let parsed: Vec<String> = result["list_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let line = line.as_str().unwrap();
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields[0].starts_with("-rw"), "{line}");
            let size_at = line.find(fields[4]).unwrap();
            let after_size = &line[size_at + fields[4].len()..];
            // Month, day, time or year, then one space, then the name.
            let date_and_name = after_size.trim_start();
            date_and_name.splitn(4, ' ').nth(3).unwrap().to_string()
        })
        .collect();
    assert_eq!(parsed, out_listing);

    let status_3 = text("status_3");
    assert_eq!(result["size_status"], status_3.len());
    assert!(
        text("mdtm_status").starts_with("213 20"),
        "{}",
        text("mdtm_status")
    );
    let mlsd = result["mlsd_out"].as_array().unwrap();
    assert_eq!(mlsd.len(), 20);
    assert!(mlsd.iter().all(|entry| entry[1] == "file"), "{mlsd:?}");
    let response = text("response");
    assert_eq!(text("response_from_10"), response[10..]);
    assert!(text("danish_status_1").contains(&format!(
        "<FTPTransaktionsId>{}</FTPTransaktionsId>",
        name("danish")
    )));

    let transactions = demo.transactions(&user.username);
    let find = |ftp_id: &str| {
        transactions
            .iter()
            .find(|t| t["ftp_transaction_id"] == ftp_id)
            .unwrap_or_else(|| panic!("no transaction {ftp_id}"))
            .clone()
    };
    assert_eq!(find(&name("binary"))["size"], 256 * 40);
    assert_eq!(find(&name("binary"))["transfer_type"], "I");
    let ascii = find(&name("ascii"));
    assert_eq!(ascii["transfer_type"], "A");
    // ftplib sends ASCII lines in network form (CRLF); the gateway stores what was sent.
    assert_eq!(ascii["size"], "line one\r\nline two\r\n".len());
    assert_eq!(find(&name("empty"))["size"], 0);
    assert_eq!(
        find(&name("empty"))["sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let txid = find(&name("txid"));
    assert_eq!(
        txid["upload_path"].as_str().unwrap(),
        format!("{}/{HEARTBEAT}/{}", user_prefix(&user), name("txid"))
    );
    assert_eq!(transactions.len(), 5, "the reused name made no transaction");

    assert!(text("reuse").starts_with("226 Transfer complete, but the name was used before"));
    assert_eq!(
        xml_element(&text("status_0"), "error.code").as_deref(),
        Some("FILENAME_CANNOT_BE_REUSED_FOR_TRANSACTION")
    );
    let deleted = result["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 5, "four answers and the status_0");
    assert!(
        deleted
            .iter()
            .all(|reply| reply.as_str().unwrap().starts_with("250"))
    );
    let after: Vec<String> = serde_json::from_value(result["out_after_delete"].clone()).unwrap();
    assert_eq!(after.len(), 16);
    assert!(after.iter().all(|file| !file.contains(&name("binary"))));
    assert!(
        text("delete_again").starts_with("550"),
        "{}",
        text("delete_again")
    );
}
