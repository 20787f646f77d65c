//! Status files (SPEC §4): their names, `status_<service>_<FTPTransactionID>_<code>.xml`, and
//! their XML, exactly in the layout of the client guide's examples (golden-tested against them
//! in `tests/status_golden.rs`), with timestamps in Copenhagen time.

use crate::ids::{Profile, ServiceName, SkatTransactionId};
use std::fmt::Write as _;

use time::macros::format_description;
use time::{Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

use crate::errors::ErrorEntry;

/// Starts the generated part of an outbound status file's name.
pub const OUTBOUND_PREFIX: &str = "outbound-";

/// What a status file says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// `0`: an error in the gateway or the backend.
    Error,
    /// `1`: the file was delivered to the backend system.
    Delivered,
    /// `2`: the backend system accepted the file.
    Accepted,
    /// `3`: a file was exposed in `/out` (a response, or an unrelated outbound file).
    Exposed,
}

impl StatusCode {
    pub fn digit(self) -> char {
        match self {
            StatusCode::Error => '0',
            StatusCode::Delivered => '1',
            StatusCode::Accepted => '2',
            StatusCode::Exposed => '3',
        }
    }

    /// The code whose [`digit`](Self::digit) is `digit`.
    pub fn from_digit(digit: char) -> Option<StatusCode> {
        [
            StatusCode::Error,
            StatusCode::Delivered,
            StatusCode::Accepted,
            StatusCode::Exposed,
        ]
        .into_iter()
        .find(|code| code.digit() == digit)
    }

    /// The `<status.code>` text.
    fn text(self, service: &str) -> String {
        match self {
            StatusCode::Error => "ERROR".into(),
            StatusCode::Delivered => "File delivered to requested Backend System".into(),
            StatusCode::Accepted => format!("File accepted by {service}"),
            StatusCode::Exposed => "File exposed".into(),
        }
    }
}

/// One status file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFile {
    pub code: StatusCode,
    pub service: ServiceName,
    /// The FTPTransactionID: the uploaded file's name, or a generated sequence number for an
    /// unrelated outbound file.
    pub ftp_transaction_id: String,
    /// The upload's internal path `/CVR_<cvr>/<account>/<service>/<name>`; `None` for an
    /// unrelated outbound file (`<filename/>`).
    pub upload_path: Option<String>,
    /// `None` where no transaction was created (a reused file name).
    pub skat_transaction_id: Option<SkatTransactionId>,
    pub at: OffsetDateTime,
    /// The exposed file's name in `/out` (status 3).
    pub response_file: Option<String>,
    /// What went wrong (status 0).
    pub error: Option<ErrorEntry>,
}

impl StatusFile {
    /// `status_<service>_<FTPTransactionID>_<code>.xml`.
    pub fn file_name(&self) -> String {
        format!(
            "status_{}_{}_{}.xml",
            self.service,
            self.ftp_transaction_id,
            self.code.digit()
        )
    }

    /// `status_<service>_<FTPTransactionID>.xml`: the legacy "Secure FTP" profile's one
    /// status file per transaction, rewritten as it moves on.
    pub fn legacy_file_name(&self) -> String {
        format!("status_{}_{}.xml", self.service, self.ftp_transaction_id)
    }

    /// `status_<service>_outbound-<seq>_3.xml` (the legacy profile's without `_3`): the name
    /// of the status file of an unrelated outbound file, numbered by the gateway. Upload names
    /// cannot start with `outbound-` ([`crate::transaction::check_transaction_id`]), so the
    /// two never collide.
    pub fn outbound_file_name(profile: Profile, service: &ServiceName, seq: i64) -> String {
        match profile {
            Profile::Gateway => format!("status_{service}_{OUTBOUND_PREFIX}{seq}_3.xml"),
            Profile::SecureFtp => format!("status_{service}_{OUTBOUND_PREFIX}{seq}.xml"),
        }
    }

    /// The XML. Status 1–3 use the examples' flat layout; status 0 the example's own, which
    /// indents every line below the declaration by one space.
    pub fn to_xml(&self) -> String {
        let indent = if self.code == StatusCode::Error {
            " "
        } else {
            ""
        };
        let mut lines: Vec<String> = vec!["<status>".into(), "<file>".into()];
        lines.push(match &self.upload_path {
            Some(path) => element("filename", path),
            None => "<filename/>".into(),
        });
        lines.push(element("FTPTransaktionsId", &self.ftp_transaction_id));
        if let Some(id) = &self.skat_transaction_id {
            lines.push(element("SKATTransactionId", id.as_str()));
        }
        lines.push(element("timestamp", &copenhagen_timestamp(self.at)));
        lines.push(element(
            "status.code",
            &self.code.text(self.service.as_str()),
        ));
        lines.push(element("service", self.service.as_str()));
        if let Some(response) = &self.response_file {
            lines.push("<response>".into());
            lines.push(element("filename", &format!("/out/{response}")));
            lines.push("</response>".into());
        }
        if let Some(error) = &self.error {
            lines.push("<error>".into());
            lines.push(element("error.code", &error.code));
            lines.push(element("error.message", &error.message));
            lines.push(element("error.resolution", &error.resolution));
            lines.push("</error>".into());
        }
        lines.push("</file>".into());
        lines.push("</status>".into());

        let mut xml =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
        for (i, line) in lines.iter().enumerate() {
            // The example indents everything but its first `<status>` line.
            let indent = if i == 0 { "" } else { indent };
            let _ = writeln!(xml, "{indent}{line}");
        }
        xml
    }
}

fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            // A parser would read a literal CR as a line feed.
            '\r' => escaped.push_str("&#13;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `yyyyMMddHHmmss` in Copenhagen time.
pub fn copenhagen_timestamp(at: OffsetDateTime) -> String {
    copenhagen(at)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .expect("formatting a date cannot fail")
}

/// `at` in Europe/Copenhagen: CET (UTC+1), or CEST (UTC+2) from the last Sunday of March to
/// the last Sunday of October, switching at 01:00 UTC (the EU rule in force since 1996).
pub fn copenhagen(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    let switch = |month_after: Month| {
        let first_of_next = time::Date::from_calendar_date(utc.year(), month_after, 1)
            .expect("the first of a month exists");
        let last_sunday = first_of_next.prev_occurrence(Weekday::Sunday);
        PrimitiveDateTime::new(last_sunday, Time::from_hms(1, 0, 0).expect("valid time"))
            .assume_utc()
    };
    let summer = utc >= switch(Month::April) && utc < switch(Month::November);
    let hours = if summer { 2 } else { 1 };
    utc.to_offset(UtcOffset::from_hms(hours, 0, 0).expect("valid offset"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn copenhagen_time_follows_the_eu_summer_time_rule() {
        let cases = [
            (datetime!(2020-12-10 13:30:17 UTC), "20201210143017"),
            (datetime!(2026-07-01 10:00:00 UTC), "20260701120000"),
            // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
            (datetime!(2026-03-29 00:59:59 UTC), "20260329015959"),
            (datetime!(2026-03-29 01:00:00 UTC), "20260329030000"),
            (datetime!(2026-10-25 00:59:59 UTC), "20261025025959"),
            (datetime!(2026-10-25 01:00:00 UTC), "20261025020000"),
            // A last Sunday that is the 31st: 31 March 2024.
            (datetime!(2024-03-31 01:00:00 UTC), "20240331030000"),
            (datetime!(2024-03-30 12:00:00 UTC), "20240330130000"),
            // New Year's Eve in UTC is already next year in Copenhagen.
            (datetime!(2026-12-31 23:30:00 UTC), "20270101003000"),
        ];
        for (utc, expected) in cases {
            assert_eq!(copenhagen_timestamp(utc), expected, "{utc}");
        }
        assert_eq!(
            copenhagen_timestamp(datetime!(2026-07-01 12:00:00 +2)),
            "20260701120000"
        );
    }

    #[test]
    fn status_digits_round_trip() {
        for digit in ['0', '1', '2', '3'] {
            assert_eq!(
                StatusCode::from_digit(digit).map(StatusCode::digit),
                Some(digit)
            );
        }
        assert_eq!(StatusCode::from_digit('4'), None);
    }

    #[test]
    fn names_and_escaping() {
        let file = StatusFile {
            code: StatusCode::Delivered,
            service: "FTPSGW.Heartbeat".parse().unwrap(),
            ftp_transaction_id: "a&b <c>.xml".into(),
            upload_path: Some("/CVR_1/UID_2/FTPSGW.Heartbeat/a&b <c>.xml".into()),
            skat_transaction_id: Some("ci1_1_1".parse().unwrap()),
            at: OffsetDateTime::UNIX_EPOCH,
            response_file: None,
            error: None,
        };
        assert_eq!(
            file.file_name(),
            "status_FTPSGW.Heartbeat_a&b <c>.xml_1.xml"
        );
        let xml = file.to_xml();
        assert!(xml.contains("<FTPTransaktionsId>a&amp;b &lt;c&gt;.xml</FTPTransaktionsId>"));
        assert!(!xml.contains("<c>"));
    }
}
