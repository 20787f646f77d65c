//! The file `mftgw user import` reads: the certificates of users moved from another
//! installation, with their gateway usernames and roles, one user per line, as CSV or JSON
//! lines. This module only reads the file; each line is registered by the core
//! ([`Users::import_certificate`](mftgw_core::users::Users::import_certificate)).
//!
//! - **JSON lines**: every non-blank line is an object `{"username": "CVR_…", "certificate":
//!   "<PEM or base64 DER>", "roles": ["HEARTBEAT", …]}`; `roles` may be left out, other keys
//!   are refused (a misspelt `roles` would otherwise import a user without them).
//! - **CSV**: a header line naming the columns `username`, `certificate` and optionally
//!   `roles`, in any order; then one line per user, the certificate as base64 DER (or a PEM
//!   body on one line), roles separated by `;` or spaces. Fields are not quoted.
//!
//! A file whose first non-blank line starts with `{` is JSON lines, any other CSV.

use base64::Engine;
use mftgw_core::users::ImportedCertificate;
use mftgw_domain::{ServiceName, Username};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// One line of the file that names a user: its number (1-based, as an editor shows it) and
/// what it says, or why it cannot be read.
#[derive(Debug)]
pub struct ImportLine {
    pub number: usize,
    pub certificate: Result<ImportedCertificate, String>,
}

/// Why the file as a whole cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportFileError {
    #[error("the file names no users")]
    Empty,
    #[error("line {line}: the CSV header must name the columns {missing} (it has: {header})")]
    MissingColumn {
        line: usize,
        missing: &'static str,
        header: String,
    },
    #[error(
        "line {line}: the CSV header names the column {column:?}, which is not one of username, certificate, roles"
    )]
    UnknownColumn { line: usize, column: String },
}

/// The users the file names, line by line.
pub fn read(text: &str) -> Result<Vec<ImportLine>, ImportFileError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .peekable();
    let lines: Vec<ImportLine> = match lines.peek() {
        None => return Err(ImportFileError::Empty),
        Some((_, first)) if first.starts_with('{') => lines
            .map(|(number, line)| ImportLine {
                number,
                certificate: json_line(line),
            })
            .collect(),
        Some(_) => {
            let (header_line, header) = lines.next().expect("peeked");
            let columns = CsvColumns::of(header_line, header)?;
            lines
                .map(|(number, line)| ImportLine {
                    number,
                    certificate: columns.line(line),
                })
                .collect()
        }
    };
    if lines.is_empty() {
        return Err(ImportFileError::Empty);
    }
    Ok(lines)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    username: String,
    certificate: String,
    #[serde(default)]
    roles: Vec<String>,
}

fn json_line(line: &str) -> Result<ImportedCertificate, String> {
    let JsonLine {
        username,
        certificate,
        roles,
    } = serde_json::from_str(line).map_err(|error| format!("not a user object: {error}"))?;
    imported(&username, &certificate, roles.iter().map(String::as_str))
}

/// Where the header put each column.
struct CsvColumns {
    username: usize,
    certificate: usize,
    roles: Option<usize>,
    count: usize,
}

impl CsvColumns {
    fn of(line: usize, header: &str) -> Result<Self, ImportFileError> {
        let names: Vec<String> = header
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        if let Some(unknown) = names
            .iter()
            .find(|name| !["username", "certificate", "roles"].contains(&name.as_str()))
        {
            return Err(ImportFileError::UnknownColumn {
                line,
                column: unknown.clone(),
            });
        }
        let position = |column: &str| names.iter().position(|name| name == column);
        let missing = |missing| ImportFileError::MissingColumn {
            line,
            missing,
            header: header.to_owned(),
        };
        Ok(Self {
            username: position("username").ok_or_else(|| missing("username, certificate"))?,
            certificate: position("certificate").ok_or_else(|| missing("username, certificate"))?,
            roles: position("roles"),
            count: names.len(),
        })
    }

    fn line(&self, line: &str) -> Result<ImportedCertificate, String> {
        if line.contains('"') {
            return Err("quoted CSV fields are not supported; give the certificate as base64 DER and roles separated by ';'".into());
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != self.count {
            return Err(format!(
                "{} fields where the header names {}",
                fields.len(),
                self.count
            ));
        }
        let roles = self.roles.map_or("", |index| fields[index]);
        imported(
            fields[self.username],
            fields[self.certificate],
            roles
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|role| !role.is_empty()),
        )
    }
}

fn imported<'a>(
    username: &str,
    certificate: &str,
    roles: impl Iterator<Item = &'a str>,
) -> Result<ImportedCertificate, String> {
    let username = Username::parse(username).map_err(|invalid| invalid.to_string())?;
    let roles = roles
        .map(|role| ServiceName::parse(role).map_err(|invalid| format!("role: {invalid}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImportedCertificate {
        cert_der: certificate_der(certificate)?,
        username,
        roles,
    })
}

/// The DER of a PEM certificate, or of base64 DER (whitespace ignored).
fn certificate_der(text: &str) -> Result<Vec<u8>, String> {
    if text.starts_with("-----BEGIN") {
        return CertificateDer::from_pem_slice(text.as_bytes())
            .map(|der| der.to_vec())
            .map_err(|error| format!("the certificate is not a PEM certificate: {error}"));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("the certificate is empty".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|error| format!("the certificate is neither PEM nor base64 DER: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER_BASE64: &str = "MAMCAQE=";

    /// A line's username and roles, or why it was refused.
    type Outcome = Result<(String, Vec<String>), String>;

    fn outcomes(text: &str) -> Vec<(usize, Outcome)> {
        read(text)
            .unwrap()
            .into_iter()
            .map(|line| {
                let certificate = line.certificate.map(|imported| {
                    assert_eq!(imported.cert_der, [0x30, 0x03, 0x02, 0x01, 0x01]);
                    (
                        imported.username.to_string(),
                        imported.roles.iter().map(|r| r.to_string()).collect(),
                    )
                });
                (line.number, certificate)
            })
            .collect()
    }

    #[test]
    fn csv_columns_come_in_any_order_and_roles_are_optional() {
        let text = format!(
            "roles,certificate,username\n\nHEARTBEAT;DMS,{DER_BASE64},CVR_12345678_UID_1\n ,{DER_BASE64},CVR_12345678_RID_2\n"
        );
        assert_eq!(
            outcomes(&text),
            [
                (
                    3,
                    Ok((
                        "CVR_12345678_UID_1".into(),
                        vec!["HEARTBEAT".into(), "DMS".into()]
                    ))
                ),
                (4, Ok(("CVR_12345678_RID_2".into(), vec![]))),
            ]
        );
    }

    #[test]
    fn json_lines_take_pem_or_base64() {
        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
        let text = format!(
            "{}\n{}\n",
            serde_json::json!({"username": "CVR_12345678_UID_1", "certificate": pem, "roles": ["HEARTBEAT"]}),
            serde_json::json!({"username": "CVR_12345678_UID_2", "certificate": DER_BASE64}),
        );
        assert_eq!(
            outcomes(&text),
            [
                (
                    1,
                    Ok(("CVR_12345678_UID_1".into(), vec!["HEARTBEAT".into()]))
                ),
                (2, Ok(("CVR_12345678_UID_2".into(), vec![]))),
            ]
        );
    }

    #[test]
    fn a_bad_line_says_what_is_wrong_and_the_others_stand() {
        let text = format!(
            "username,certificate,roles\n\
             CVR_12345678_UID_1,{DER_BASE64},HEARTBEAT\n\
             CVR_1/UID_1,{DER_BASE64},HEARTBEAT\n\
             CVR_12345678_UID_3,not base64!,\n\
             CVR_12345678_UID_4,{DER_BASE64}\n\
             CVR_12345678_UID_5,\"{DER_BASE64}\",\n\
             CVR_12345678_UID_6,{DER_BASE64},../etc\n"
        );
        let refusals: Vec<(usize, String)> = outcomes(&text)
            .into_iter()
            .filter_map(|(number, outcome)| outcome.err().map(|error| (number, error)))
            .collect();
        let numbers: Vec<usize> = refusals.iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, [3, 4, 5, 6, 7], "{refusals:?}");
        assert!(refusals[0].1.contains("gateway username"), "{refusals:?}");
        assert!(
            refusals[1].1.contains("neither PEM nor base64"),
            "{refusals:?}"
        );
        assert!(refusals[2].1.contains("2 fields where the header names 3"));
        assert!(refusals[3].1.contains("quoted CSV fields"));
        assert!(refusals[4].1.starts_with("role:"), "{refusals:?}");

        let json =
            "{\"username\": \"CVR_12345678_UID_1\", \"certificate\": \"MAMCAQE=\", \"role\": []}";
        let refused = outcomes(json).remove(0).1.unwrap_err();
        assert!(refused.contains("unknown field `role`"), "{refused}");
    }

    #[test]
    fn a_file_without_users_or_with_a_wrong_header_is_refused_whole() {
        assert_eq!(read("\n  \n").unwrap_err(), ImportFileError::Empty);
        assert_eq!(
            read("username,certificate\n").unwrap_err(),
            ImportFileError::Empty
        );
        assert!(matches!(
            read("user,certificate\nx,y\n").unwrap_err(),
            ImportFileError::UnknownColumn { line: 1, .. }
        ));
        assert!(matches!(
            read("\nusername,roles\nx,y\n").unwrap_err(),
            ImportFileError::MissingColumn { line: 2, .. }
        ));
    }
}
