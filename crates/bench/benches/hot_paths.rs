//! The pure functions on every request's path: FTP command parsing, status file rendering,
//! certificate subject → gateway identity, and directory listing lines.
//! `cargo bench -p mftgw-bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::{StatusCode, StatusFile};
use mftgw_ftps::command::parse_command;
use mftgw_ftps::listing::{DirEntry, EntryKind, list_line, mlsd_line};
use mftgw_oces::identity::identity_from_der;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::macros::datetime;

fn command_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_command");
    for line in [
        &b"STOR /FTPSGW.Heartbeat/ping20261123120000000-hb01.xml\r\n"[..],
        b"USER CVR_19552101_RID_60134540\r\n",
        b"EPSV\r\n",
        b"MLSD /out\r\n",
    ] {
        let name = String::from_utf8_lossy(line)
            .split(' ')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        group.bench_function(name, |b| b.iter(|| parse_command(black_box(line))));
    }
    group.finish();
}

fn status_rendering(c: &mut Criterion) {
    let mut status = StatusFile {
        code: StatusCode::Exposed,
        service: mftgw_domain::ServiceName::heartbeat(),
        ftp_transaction_id: "ping20201210143002441-hb01.xml".into(),
        upload_path: Some(
            "/CVR_19552101/RID_60134540/FTPSGW.Heartbeat/ping20201210143002441-hb01.xml".into(),
        ),
        skat_transaction_id: Some("ci1607607002916_31616756_1".parse().unwrap()),
        at: datetime!(2020-12-10 14:30:18 UTC),
        response_file: Some(
            "/out/FTPSGW.Heartbeat_in_ping20201210143002441-hb01.xml_response.txt".into(),
        ),
        error: None,
    };
    c.bench_function("status_3_to_xml", |b| {
        b.iter(|| black_box(&status).to_xml())
    });
    c.bench_function("status_file_name", |b| {
        b.iter(|| black_box(&status).file_name())
    });
    status.code = StatusCode::Error;
    status.response_file = None;
    status.error = Some(ErrorEntry {
        code: "FILENAME_CANNOT_BE_REUSED_FOR_TRANSACTION".into(),
        message: "The filename provided has already been used for previous transaction".into(),
        resolution: "Resubmit the file with a new filename".into(),
    });
    c.bench_function("status_0_to_xml", |b| {
        b.iter(|| black_box(&status).to_xml())
    });
}

fn subject_parsing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = mftgw_testpki::TestPki::generate(dir.path()).expect("test PKI");
    let mut group = c.benchmark_group("identity_from_der");
    for name in ["moces", "oces3-org"] {
        let client = pki.client(name).expect("standard client");
        let der = CertificateDer::pem_file_iter(&client.cert_pem)
            .expect("PEM")
            .next()
            .expect("a certificate")
            .expect("valid PEM");
        group.bench_function(name, |b| b.iter(|| identity_from_der(black_box(&der))));
    }
    group.finish();
}

fn listing(c: &mut Criterion) {
    let now = datetime!(2026-11-23 12:00 UTC);
    let entry = DirEntry {
        name: "status_FTPSGW.Heartbeat_ping20261123120000000-hb01.xml_3.xml".into(),
        kind: EntryKind::File,
        size: 512,
        modified: datetime!(2026-11-23 11:59:59 UTC),
        writable: true,
    };
    c.bench_function("list_line", |b| {
        b.iter(|| list_line(black_box(&entry), now))
    });
    c.bench_function("mlsd_line", |b| b.iter(|| mlsd_line(black_box(&entry))));
}

criterion_group!(
    hot_paths,
    command_parsing,
    status_rendering,
    subject_parsing,
    listing
);
criterion_main!(hot_paths);
