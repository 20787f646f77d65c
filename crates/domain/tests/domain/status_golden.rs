//! The five status file examples of the client guide (seed 000, copied verbatim into
//! `tests/golden/`) rendered from their values: byte for byte, except where SPEC §4 decides a
//! value differently from the status_0 example (the full upload path, and the timestamp as
//! `yyyyMMddHHmmss` in Copenhagen time rather than epoch milliseconds).

use mftgw_domain::errors::{ErrorCatalogue, FILENAME_CANNOT_BE_REUSED};
use mftgw_domain::status::{StatusCode, StatusFile};
use time::macros::datetime;

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/golden/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn heartbeat(code: StatusCode) -> StatusFile {
    StatusFile {
        code,
        service: "FTPSGW.Heartbeat".parse().unwrap(),
        ftp_transaction_id: "ping20201210143002441-hb01.xml".into(),
        upload_path: Some(
            "/CVR_19552101/RID_60134540/FTPSGW.Heartbeat/ping20201210143002441-hb01.xml".into(),
        ),
        skat_transaction_id: Some("ci1607607002916_31616756_1".parse().unwrap()),
        // 14:30:17 in Copenhagen on 10 December is 13:30:17 UTC (CET).
        at: datetime!(2020-12-10 13:30:17 UTC),
        response_file: None,
        error: None,
    }
}

#[test]
fn status_1_delivered() {
    let file = heartbeat(StatusCode::Delivered);
    assert_eq!(
        file.file_name(),
        "status_FTPSGW.Heartbeat_ping20201210143002441-hb01.xml_1.xml"
    );
    assert_eq!(file.to_xml(), golden("status_1.xml"));
}

#[test]
fn status_2_accepted() {
    assert_eq!(
        heartbeat(StatusCode::Accepted).to_xml(),
        golden("status_2.xml")
    );
}

#[test]
fn status_3_response() {
    let file = StatusFile {
        at: datetime!(2020-12-10 13:30:18 UTC),
        response_file: Some(
            "FTPSGW.Heartbeat_in_ping20201210143002441-hb01.xml_response.txt".into(),
        ),
        ..heartbeat(StatusCode::Exposed)
    };
    assert_eq!(file.to_xml(), golden("status_3_response.xml"));
}

#[test]
fn status_3_unrelated_outbound() {
    let name = "Manifest.MidlertidigOpbevaringOpdater_MAN_DKA54A_eda73f9d-0215-4849-9e0b-275c91c62624.notify.xml";
    let file = StatusFile {
        code: StatusCode::Exposed,
        service: "Manifest.MidlertidigOpbevaringOpdater".parse().unwrap(),
        ftp_transaction_id: name.into(),
        upload_path: None,
        skat_transaction_id: Some("MAN_1607577057900".parse().unwrap()),
        at: datetime!(2020-12-10 05:11:59 UTC),
        response_file: Some(name.into()),
        error: None,
    };
    assert_eq!(file.to_xml(), golden("status_3_unrelated.xml"));
}

#[test]
fn status_0_error() {
    let error = ErrorCatalogue::builtin()
        .get(FILENAME_CANNOT_BE_REUSED)
        .unwrap()
        .clone();
    let file = StatusFile {
        code: StatusCode::Error,
        service: "FTPSGW.Heartbeat".parse().unwrap(),
        ftp_transaction_id: "empty.xml".into(),
        upload_path: Some("/CVR_19552101/RID_60134540/FTPSGW.Heartbeat/empty.xml".into()),
        skat_transaction_id: None,
        at: datetime!(2020-12-10 15:49:07 UTC),
        response_file: None,
        error: Some(error),
    };
    assert_eq!(file.file_name(), "status_FTPSGW.Heartbeat_empty.xml_0.xml");
    let expected = golden("status_0.xml")
        .replace(
            "<filename>RID_60134540/FTPSGW.Heartbeat/empty.xml</filename>",
            "<filename>/CVR_19552101/RID_60134540/FTPSGW.Heartbeat/empty.xml</filename>",
        )
        .replace(
            "<timestamp>1607615347963</timestamp>",
            "<timestamp>20201210164907</timestamp>",
        );
    assert_eq!(file.to_xml(), expected);
}
