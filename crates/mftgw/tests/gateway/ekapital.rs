//! eKapital Classic record checks with real clients: files for AKFA (230-character records)
//! and CPS (868) pass when uploaded in ASCII mode with the right start record, record
//! lengths and end record; each way of getting it wrong gets its status_0 with the client
//! guide's texts, and the transaction is rejected on arrival, so it is never delivered (the
//! demo's simulated backend for AKFA and CPS accepts what reaches it: status 1 and 2).

use std::path::{Path, PathBuf};

use crate::support::{Demo, DemoUser, curl, out_names, wait_for_out, xml_element};

const AKFA_FILE_NUMBER: &str = "0314317285";
const CPS_FILE_NUMBER: &str = "0314315255";

/// A record of `length` characters: `fields` then spaces.
fn record(fields: &str, length: usize) -> String {
    assert!(fields.len() <= length);
    format!("{fields:<length$}")
}

/// A valid file: start record with the file number, `data` data records, end record.
fn records(file_number: &str, data_record_type: &str, length: usize, data: usize) -> Vec<String> {
    let mut lines = vec![record(
        &format!("00011234{file_number}Demo Pension A/S"),
        length,
    )];
    for n in 0..data {
        lines.push(record(&format!("{data_record_type}{n:08}"), length));
    }
    lines.push(record(&format!("99981234{:07}", data + 2), length));
    lines
}

fn write(demo: &Demo, name: &str, lines: &[String]) -> PathBuf {
    let path = demo.dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn ftplib_put(demo: &Demo, user: &DemoUser, mode: &str, local: &Path, remote: &str) -> String {
    let (ok, out, err) = demo.python(
        "ftplib_put.py",
        user,
        &[mode, local.to_str().unwrap(), remote],
    );
    assert!(ok, "ftplib upload of {remote} failed:\n{err}");
    out
}

fn curl_put(demo: &Demo, user: &DemoUser, ascii: bool, local: &Path, remote: &str) {
    let mut args = vec!["-T", local.to_str().unwrap()];
    if ascii {
        args.push("--use-ascii");
    }
    let (ok, _, err) = curl(demo, user, remote, &args);
    assert!(ok, "curl upload of {remote} failed: {err}");
}

fn transaction(demo: &Demo, user: &DemoUser, name: &str) -> serde_json::Value {
    demo.transactions(&user.username)
        .into_iter()
        .find(|t| t["ftp_transaction_id"] == name)
        .unwrap_or_else(|| panic!("no transaction {name}"))
}

/// Waits for the status_0 of `name` and checks its error against the client guide.
fn assert_rejected(
    demo: &Demo,
    user: &DemoUser,
    service: &str,
    name: &str,
    code: &str,
    message: &str,
) {
    let status_0 = format!("status_{service}_{name}_0.xml");
    wait_for_out(demo, user, std::slice::from_ref(&status_0));
    let (ok, xml, err) = curl(demo, user, &format!("/out/{status_0}"), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        xml_element(&xml, "error.code").as_deref(),
        Some(code),
        "{xml}"
    );
    assert_eq!(
        xml_element(&xml, "error.message").as_deref(),
        Some(message),
        "{xml}"
    );
    let t = transaction(demo, user, name);
    assert_eq!(t["state"], "rejected");
    assert_eq!(
        xml_element(&xml, "SKATTransactionId").as_deref(),
        t["skat_transaction_id"].as_str()
    );
}

const FORMAT: &str = "www.skat.dk/eKapital";

#[test]
fn valid_akfa_and_cps_files_pass_from_ftplib_and_curl_in_ascii_mode() {
    let demo = Demo::start();
    let akfa_user = demo.user(0);
    let cps_user = demo.user(1);
    let akfa = write(
        &demo,
        "akfa.txt",
        &records(AKFA_FILE_NUMBER, "2260", 230, 3),
    );
    let cps = write(&demo, "cps.txt", &records(CPS_FILE_NUMBER, "2253", 868, 2));
    let reply = ftplib_put(&demo, &akfa_user, "ascii", &akfa, "/AKFA/akfa-ftplib.txt");
    assert!(
        reply.starts_with("226 Transfer complete: transaction"),
        "{reply}"
    );
    curl_put(&demo, &akfa_user, true, &akfa, "/AKFA/akfa-curl.txt");
    let reply = ftplib_put(&demo, &cps_user, "ascii", &cps, "/CPS/cps-ftplib.txt");
    assert!(reply.starts_with("226"), "{reply}");
    curl_put(&demo, &cps_user, true, &cps, "/CPS/cps-curl.txt");

    for (user, service, name) in [
        (&akfa_user, "AKFA", "akfa-ftplib.txt"),
        (&akfa_user, "AKFA", "akfa-curl.txt"),
        (&cps_user, "CPS", "cps-ftplib.txt"),
        (&cps_user, "CPS", "cps-curl.txt"),
    ] {
        let accepted = [1, 2].map(|code| format!("status_{service}_{name}_{code}.xml"));
        wait_for_out(&demo, user, &accepted);
        let t = transaction(&demo, user, name);
        assert_eq!(t["transfer_type"], "A", "{name}");
        assert_eq!(t["state"], "accepted", "{name}");
    }
    // What ASCII mode puts on the wire is stored: CRLF line endings from both clients.
    for name in ["akfa-ftplib.txt", "akfa-curl.txt"] {
        assert_eq!(
            transaction(&demo, &akfa_user, name)["size"],
            5 * 232,
            "{name}"
        );
    }
}

#[test]
fn each_format_error_gets_its_status_0() {
    let demo = Demo::start();
    let user = demo.user(0);
    let valid = records(AKFA_FILE_NUMBER, "2260", 230, 3);

    let binary = write(&demo, "binary.txt", &valid);
    curl_put(&demo, &user, false, &binary, "/AKFA/binary.txt");
    assert_rejected(
        &demo,
        &user,
        "AKFA",
        "binary.txt",
        "FILE_NOT_UPLOADED_IN_ASCII_MODE",
        "Files to the requested Backend System must be uploaded in ASCII mode",
    );

    let mut long = valid.clone();
    long[2].push('X');
    let long = write(&demo, "long.txt", &long);
    ftplib_put(&demo, &user, "ascii", &long, "/AKFA/long.txt");
    assert_rejected(
        &demo,
        &user,
        "AKFA",
        "long.txt",
        "RECORD_LENGTH_INCORRECT",
        &format!(
            "The file does not conform with required format due to incorrect record length. Please see {FORMAT}"
        ),
    );

    let mut wrong_file_number = valid.clone();
    wrong_file_number[0] = record(&format!("00011234{CPS_FILE_NUMBER}"), 230);
    let first = write(&demo, "first.txt", &wrong_file_number);
    curl_put(&demo, &user, true, &first, "/AKFA/first.txt");
    assert_rejected(
        &demo,
        &user,
        "AKFA",
        "first.txt",
        "FIRST_RECORD_INCORRECT",
        &format!(
            "The file does not conform with required format due to incorrect start of first record. Please see {FORMAT}"
        ),
    );

    let mut no_end = valid.clone();
    no_end.pop();
    let last = write(&demo, "last.txt", &no_end);
    ftplib_put(&demo, &user, "ascii", &last, "/AKFA/last.txt");
    assert_rejected(
        &demo,
        &user,
        "AKFA",
        "last.txt",
        "LAST_RECORD_INCORRECT",
        &format!(
            "The file does not conform with required format due to incorrect start of last record. Please see {FORMAT}"
        ),
    );

    // Nothing rejected on arrival was delivered: a valid upload after them is delivered and
    // answered (the worker has passed them), and they still have their status_0 alone.
    let after = write(&demo, "after.txt", &valid);
    curl_put(&demo, &user, true, &after, "/AKFA/after.txt");
    let answered = [1, 2].map(|code| format!("status_AKFA_after.txt_{code}.xml"));
    wait_for_out(&demo, &user, &answered);
    let rejected: Vec<String> = out_names(&demo, &user)
        .into_iter()
        .filter(|name| !answered.contains(name))
        .collect();
    assert_eq!(
        rejected.len(),
        4,
        "one status_0 each, nothing else: {rejected:?}"
    );

    // A rejected upload used its name like any other. Reusing it leaves the original's
    // status_0 (its error and SKATTransactionId) as it was ...
    let status_0 = "/out/status_AKFA_last.txt_0.xml";
    let (ok, original, err) = curl(&demo, &user, status_0, &[]);
    assert!(ok, "{err}");
    assert!(
        xml_element(&original, "SKATTransactionId").is_some(),
        "{original}"
    );
    let again = write(&demo, "again.txt", &valid);
    curl_put(&demo, &user, true, &again, "/AKFA/last.txt");
    let (ok, xml, err) = curl(&demo, &user, status_0, &[]);
    assert!(ok, "{err}");
    assert_eq!(xml, original, "the original status_0 is untouched");
    assert_eq!(out_names(&demo, &user).len(), 6);
    // ... and once the client has taken it away, a reuse is answered with a status_0 of its own.
    let (ok, _, err) = curl(
        &demo,
        &user,
        "/",
        &["-Q", "DELE /out/status_AKFA_last.txt_0.xml"],
    );
    assert!(ok, "{err}");
    curl_put(&demo, &user, true, &again, "/AKFA/last.txt");
    let (ok, xml, err) = curl(&demo, &user, status_0, &[]);
    assert!(ok, "{err}");
    assert_eq!(
        xml_element(&xml, "error.code").as_deref(),
        Some("FILENAME_CANNOT_BE_REUSED_FOR_TRANSACTION")
    );
    assert_eq!(xml_element(&xml, "SKATTransactionId"), None, "{xml}");
    assert_eq!(demo.transactions(&user.username).len(), 5);
}
