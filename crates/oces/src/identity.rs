//! Certificate subject → gateway identity, or a precise refusal. Pure: no I/O, no trust decisions
//! (whether the certificate is valid is [`crate::trust`]'s job).
//!
//! OCES2 subjects carry `serialNumber` (2.5.4.5) `CVR:<cvr>-UID:<id>` (VOCES) or
//! `CVR:<cvr>-RID:<id>` (MOCES) or `PID:<pid>` (personal, no company); FOCES (`-FID:`)
//! certificates are refused. Personal certificates are for the legacy Secure FTP profile only:
//! the other front ends refuse them with [`OcesIdentity::of_company`].
//! OCES3 subjects carry `UI:DK-O:G:<uuid>` (organisation) or `UI:DK-E:G:<uuid>` (employee) and
//! the CVR only in `organizationIdentifier` (2.5.4.97) `NTRDK-<cvr>`.
//!
//! The username ends up in file system paths, so every part is validated strictly: CVR exactly 8
//! ASCII digits, UID/RID 1–64 ASCII letters or digits, UUIDs canonical (normalised to lower case).

use x509_parser::asn1_rs::Tag;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// DER content octets of the serialNumber attribute type OID 2.5.4.5.
const SERIAL_NUMBER_OID: &[u8] = &[0x55, 0x04, 0x05];
/// DER content octets of the organizationIdentifier attribute type OID 2.5.4.97.
const ORGANIZATION_IDENTIFIER_OID: &[u8] = &[0x55, 0x04, 0x61];

const MAX_ACCOUNT_ID_LEN: usize = 64;
/// Refusal messages quote at most this many characters of an offending value.
const MAX_QUOTED_CHARS: usize = 80;

/// The account part of a gateway identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    /// OCES2 VOCES user id.
    Uid(String),
    /// OCES2 MOCES employee id.
    Rid(String),
    /// OCES3 UUID, 36 characters, lower case.
    Ui(String),
    /// OCES2 personal id (e.g. `9208-2002-2-123456789012`).
    Pid(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    Voces,
    Moces,
    Oces3Organisation,
    Oces3Employee,
    Personal,
}

/// Who a certificate speaks for: a gateway user is (CVR, account), or a person's account,
/// and keeps it across renewals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OcesIdentity {
    /// Exactly 8 ASCII digits; `None` only for a personal certificate.
    pub cvr: Option<String>,
    pub account: Account,
    pub kind: CertificateKind,
}

impl OcesIdentity {
    /// `CVR_<cvr>_UID_<id>`, `CVR_<cvr>_RID_<id>`, `CVR_<cvr>_UI_<uuid>`, or `PID_<pid>` for
    /// a person.
    pub fn username(&self) -> String {
        match &self.cvr {
            Some(cvr) => format!("CVR_{cvr}_{}", self.account_label()),
            None => self.account_label(),
        }
    }

    /// `UID_<id>`, `RID_<id>`, `UI_<uuid>` or `PID_<pid>`, as used in internal paths
    /// `/CVR_<cvr>/<account>/`.
    pub fn account_label(&self) -> String {
        match &self.account {
            Account::Uid(id) => format!("UID_{id}"),
            Account::Rid(id) => format!("RID_{id}"),
            Account::Ui(uuid) => format!("UI_{uuid}"),
            Account::Pid(pid) => format!("PID_{pid}"),
        }
    }

    /// The identity, unless it is a person's: every front end but the legacy Secure FTP
    /// listener serves companies only.
    pub fn of_company(self) -> Result<Self, IdentityRefusal> {
        match self.kind {
            CertificateKind::Personal => Err(IdentityRefusal::PersonalCertificate),
            _ => Ok(self),
        }
    }
}

/// Why a certificate subject yields no gateway identity. Quoted values are escaped (control
/// characters visible) and shortened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefusal {
    #[error("FOCES (function) certificates are not supported")]
    FunctionCertificate,
    #[error(
        "personal (PID) certificates are only accepted by the legacy Secure FTP listener; use a VOCES, MOCES or OCES3 certificate"
    )]
    PersonalCertificate,
    #[error("the certificate subject has no serialNumber attribute")]
    MissingSerialNumber,
    #[error("the certificate subject has more than one serialNumber attribute")]
    AmbiguousSerialNumber,
    #[error("the OCES3 certificate subject has no organizationIdentifier (NTRDK-<CVR>)")]
    MissingOrganizationIdentifier,
    #[error("the certificate subject has more than one organizationIdentifier attribute")]
    AmbiguousOrganizationIdentifier,
    #[error("CVR \"{0}\" in serialNumber is not exactly 8 digits")]
    MalformedCvr(String),
    #[error("organizationIdentifier \"{0}\" is not NTRDK- followed by an 8-digit CVR")]
    MalformedOrganizationIdentifier(String),
    #[error(
        "account id \"{0}\" is malformed: UID/RID must be 1-64 ASCII letters or digits, PID 1-64 letters, digits or '-', OCES3 ids a canonical UUID"
    )]
    MalformedAccountId(String),
    #[error(
        "serialNumber \"{0}\" matches no supported layout (CVR:<cvr>-UID:<id>, CVR:<cvr>-RID:<id>, PID:<pid>, UI:DK-O:G:<uuid>, UI:DK-E:G:<uuid>)"
    )]
    UnknownLayout(String),
    #[error("{attribute} \"{value}\" has leading or trailing whitespace")]
    SurroundingWhitespace {
        attribute: &'static str,
        value: String,
    },
    #[error("{attribute} cannot be read: {reason}")]
    UnreadableAttribute {
        attribute: &'static str,
        reason: String,
    },
    #[error("not an X.509 certificate: {0}")]
    NotAnX509Certificate(String),
}

impl IdentityRefusal {
    /// Stable snake_case reason for audit records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityRefusal::FunctionCertificate => "foces_unsupported",
            IdentityRefusal::PersonalCertificate => "personal_certificate_unsupported",
            IdentityRefusal::MissingSerialNumber => "missing_serial_number",
            IdentityRefusal::AmbiguousSerialNumber => "ambiguous_serial_number",
            IdentityRefusal::MissingOrganizationIdentifier => "missing_organization_identifier",
            IdentityRefusal::AmbiguousOrganizationIdentifier => "ambiguous_organization_identifier",
            IdentityRefusal::MalformedCvr(_) => "malformed_cvr",
            IdentityRefusal::MalformedOrganizationIdentifier(_) => {
                "malformed_organization_identifier"
            }
            IdentityRefusal::MalformedAccountId(_) => "malformed_account_id",
            IdentityRefusal::UnknownLayout(_) => "unknown_serial_number_layout",
            IdentityRefusal::SurroundingWhitespace { .. } => "surrounding_whitespace",
            IdentityRefusal::UnreadableAttribute { .. } => "unreadable_attribute",
            IdentityRefusal::NotAnX509Certificate(_) => "not_an_x509_certificate",
        }
    }
}

/// Derives the gateway identity from a certificate subject. Attributes may come in any order and
/// share multi-valued RDNs (`CN=Name + serialNumber=CVR:...-RID:...`).
pub fn identity_from_subject(subject: &X509Name<'_>) -> Result<OcesIdentity, IdentityRefusal> {
    let serial_number = match single_attribute(subject, SERIAL_NUMBER_OID) {
        Attribute::Missing => return Err(IdentityRefusal::MissingSerialNumber),
        Attribute::Repeated => return Err(IdentityRefusal::AmbiguousSerialNumber),
        Attribute::Single(attribute) => attribute_text(attribute, "serialNumber")?,
    };

    if let Some(rest) = serial_number.strip_prefix("CVR:") {
        return oces2_identity(serial_number, rest);
    }
    if let Some(pid) = serial_number.strip_prefix("PID:") {
        let pid_is_valid = (1..=MAX_ACCOUNT_ID_LEN).contains(&pid.len())
            && pid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !pid_is_valid {
            return Err(IdentityRefusal::MalformedAccountId(quoted(pid)));
        }
        return Ok(OcesIdentity {
            cvr: None,
            account: Account::Pid(pid.to_owned()),
            kind: CertificateKind::Personal,
        });
    }
    let (kind, uuid) = if let Some(uuid) = serial_number.strip_prefix("UI:DK-O:G:") {
        (CertificateKind::Oces3Organisation, uuid)
    } else if let Some(uuid) = serial_number.strip_prefix("UI:DK-E:G:") {
        (CertificateKind::Oces3Employee, uuid)
    } else {
        return Err(IdentityRefusal::UnknownLayout(quoted(serial_number)));
    };
    let uuid =
        canonical_uuid(uuid).ok_or_else(|| IdentityRefusal::MalformedAccountId(quoted(uuid)))?;
    Ok(OcesIdentity {
        cvr: Some(oces3_cvr(subject)?),
        account: Account::Ui(uuid),
        kind,
    })
}

/// Parses a DER certificate and derives the gateway identity from its subject.
pub fn identity_from_der(cert_der: &[u8]) -> Result<OcesIdentity, IdentityRefusal> {
    let (remainder, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| IdentityRefusal::NotAnX509Certificate(e.to_string()))?;
    if !remainder.is_empty() {
        return Err(IdentityRefusal::NotAnX509Certificate(format!(
            "{} bytes of trailing data after the certificate",
            remainder.len()
        )));
    }
    identity_from_subject(cert.subject())
}

/// `rest` is the serialNumber after `CVR:`, i.e. `<cvr>-UID:<id>` and friends.
fn oces2_identity(serial_number: &str, rest: &str) -> Result<OcesIdentity, IdentityRefusal> {
    let (cvr, account) = rest
        .split_once('-')
        .ok_or_else(|| IdentityRefusal::UnknownLayout(quoted(serial_number)))?;
    if !is_cvr(cvr) {
        return Err(IdentityRefusal::MalformedCvr(quoted(cvr)));
    }
    let (kind, id) = if let Some(id) = account.strip_prefix("UID:") {
        (CertificateKind::Voces, id)
    } else if let Some(id) = account.strip_prefix("RID:") {
        (CertificateKind::Moces, id)
    } else if account.starts_with("FID:") {
        return Err(IdentityRefusal::FunctionCertificate);
    } else {
        return Err(IdentityRefusal::UnknownLayout(quoted(serial_number)));
    };
    let id_is_valid = (1..=MAX_ACCOUNT_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_is_valid {
        return Err(IdentityRefusal::MalformedAccountId(quoted(id)));
    }
    let account = match kind {
        CertificateKind::Voces => Account::Uid(id.to_owned()),
        _ => Account::Rid(id.to_owned()),
    };
    Ok(OcesIdentity {
        cvr: Some(cvr.to_owned()),
        account,
        kind,
    })
}

fn oces3_cvr(subject: &X509Name<'_>) -> Result<String, IdentityRefusal> {
    let organization_identifier = match single_attribute(subject, ORGANIZATION_IDENTIFIER_OID) {
        Attribute::Missing => return Err(IdentityRefusal::MissingOrganizationIdentifier),
        Attribute::Repeated => return Err(IdentityRefusal::AmbiguousOrganizationIdentifier),
        Attribute::Single(attribute) => attribute_text(attribute, "organizationIdentifier")?,
    };
    match organization_identifier.strip_prefix("NTRDK-") {
        Some(cvr) if is_cvr(cvr) => Ok(cvr.to_owned()),
        _ => Err(IdentityRefusal::MalformedOrganizationIdentifier(quoted(
            organization_identifier,
        ))),
    }
}

enum Attribute<'n, 'a> {
    Missing,
    Single(&'n AttributeTypeAndValue<'a>),
    Repeated,
}

fn single_attribute<'n, 'a>(subject: &'n X509Name<'a>, oid: &[u8]) -> Attribute<'n, 'a> {
    let mut matching = subject
        .iter_attributes()
        .filter(|attribute| attribute.attr_type().as_bytes() == oid);
    match (matching.next(), matching.next()) {
        (None, _) => Attribute::Missing,
        (Some(attribute), None) => Attribute::Single(attribute),
        (Some(_), Some(_)) => Attribute::Repeated,
    }
}

/// The attribute's text, if it is a PrintableString or UTF8String without surrounding whitespace.
fn attribute_text<'a>(
    attribute: &AttributeTypeAndValue<'a>,
    name: &'static str,
) -> Result<&'a str, IdentityRefusal> {
    let value = attribute.attr_value();
    let tag = value.tag();
    if tag != Tag::PrintableString && tag != Tag::Utf8String {
        return Err(IdentityRefusal::UnreadableAttribute {
            attribute: name,
            reason: format!("it is encoded as {tag}, expected PrintableString or UTF8String"),
        });
    }
    let text =
        std::str::from_utf8(value.data).map_err(|_| IdentityRefusal::UnreadableAttribute {
            attribute: name,
            reason: "it is not valid UTF-8".to_owned(),
        })?;
    if text.trim() != text {
        return Err(IdentityRefusal::SurroundingWhitespace {
            attribute: name,
            value: quoted(text),
        });
    }
    Ok(text)
}

fn is_cvr(text: &str) -> bool {
    text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `8-4-4-4-12` hex digits, returned in lower case.
fn canonical_uuid(text: &str) -> Option<String> {
    let is_canonical = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    is_canonical.then(|| text.to_ascii_lowercase())
}

/// Escapes control characters and quotes, and shortens long values, for refusal messages.
fn quoted(value: &str) -> String {
    let mut shown: String = value
        .chars()
        .take(MAX_QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > MAX_QUOTED_CHARS {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer;

    use super::*;

    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    const COUNTRY: &[u8] = &[0x55, 0x04, 0x06];
    const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

    const PRINTABLE: u8 = 0x13;
    const UTF8: u8 = 0x0c;
    const BMP: u8 = 0x1e;

    /// Minimal DER writer for hand-built subjects.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            len @ 0..0x80 => out.push(len as u8),
            len @ 0x80..0x100 => out.extend([0x81, len as u8]),
            len => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    fn value(tag: u8, bytes: &[u8]) -> Vec<u8> {
        tlv(tag, bytes)
    }

    fn printable(text: &str) -> Vec<u8> {
        value(PRINTABLE, text.as_bytes())
    }

    fn utf8(text: &str) -> Vec<u8> {
        value(UTF8, text.as_bytes())
    }

    fn bmp(text: &str) -> Vec<u8> {
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        value(BMP, &utf16)
    }

    /// One AttributeTypeAndValue.
    fn attr(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, oid), value].concat())
    }

    /// One RDN holding the given attributes (more than one makes it multi-valued).
    fn rdn(attributes: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &attributes.concat())
    }

    fn name(rdns: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &rdns.concat())
    }

    /// The usual OCES2 layout: C, O, then CN and serialNumber as single-valued RDNs.
    fn oces2_subject(serial_number: Vec<u8>) -> Vec<u8> {
        name(&[
            rdn(&[attr(COUNTRY, printable("DK"))]),
            rdn(&[attr(ORGANIZATION, utf8("Testfirma A/S // CVR:19552101"))]),
            rdn(&[attr(COMMON_NAME, utf8("Karen Testesen"))]),
            rdn(&[attr(SERIAL_NUMBER_OID, serial_number)]),
        ])
    }

    fn oces3_subject(serial_number: &str, organization_identifier: Option<Vec<u8>>) -> Vec<u8> {
        let mut rdns = vec![
            rdn(&[attr(COUNTRY, printable("DK"))]),
            rdn(&[attr(ORGANIZATION, utf8("Prøve ApS"))]),
        ];
        rdns.extend(
            organization_identifier.map(|oi| rdn(&[attr(ORGANIZATION_IDENTIFIER_OID, oi)])),
        );
        rdns.push(rdn(&[attr(COMMON_NAME, utf8("Jens Prøvesen"))]));
        rdns.push(rdn(&[attr(SERIAL_NUMBER_OID, utf8(serial_number))]));
        name(&rdns)
    }

    fn identify(subject_der: &[u8]) -> Result<String, &'static str> {
        let (rest, subject) = X509Name::from_der(subject_der).expect("test subject is valid DER");
        assert!(rest.is_empty());
        identity_from_subject(&subject)
            .map(|identity| identity.username())
            .map_err(|refusal| refusal.code())
    }

    const UUID: &str = "6f0a2c5e-8b1d-4e3f-9a7c-2d4b6e8f0a1c";

    #[test]
    fn accepted_subjects_map_to_usernames() {
        let cases: Vec<(&str, Vec<u8>, String)> = vec![
            (
                "VOCES, PrintableString",
                oces2_subject(printable("CVR:19552101-UID:25351738")),
                "CVR_19552101_UID_25351738".into(),
            ),
            (
                "MOCES, UTF8String",
                oces2_subject(utf8("CVR:19552101-RID:60134540")),
                "CVR_19552101_RID_60134540".into(),
            ),
            (
                "MOCES, serialNumber in a multi-valued RDN with CN (real OCES2 layout)",
                name(&[
                    rdn(&[attr(COUNTRY, printable("DK"))]),
                    rdn(&[attr(ORGANIZATION, utf8("Testfirma A/S // CVR:19552101"))]),
                    rdn(&[
                        attr(COMMON_NAME, utf8("Karen Testesen")),
                        attr(SERIAL_NUMBER_OID, printable("CVR:19552101-RID:60134540")),
                    ]),
                ]),
                "CVR_19552101_RID_60134540".into(),
            ),
            (
                "serialNumber first in a multi-valued RDN, subject in reverse order",
                name(&[
                    rdn(&[
                        attr(SERIAL_NUMBER_OID, printable("CVR:19552101-UID:1")),
                        attr(COMMON_NAME, utf8("System")),
                    ]),
                    rdn(&[attr(COUNTRY, printable("DK"))]),
                ]),
                "CVR_19552101_UID_1".into(),
            ),
            (
                "alphanumeric id, 64 characters",
                oces2_subject(printable(&format!("CVR:19552101-UID:Ab{}", "9".repeat(62)))),
                format!("CVR_19552101_UID_Ab{}", "9".repeat(62)),
            ),
            (
                "OCES3 organisation",
                oces3_subject(&format!("UI:DK-O:G:{UUID}"), Some(utf8("NTRDK-30808460"))),
                format!("CVR_30808460_UI_{UUID}"),
            ),
            (
                "OCES3 employee, upper-case UUID normalised, PrintableString organizationIdentifier",
                oces3_subject(
                    &format!("UI:DK-E:G:{}", UUID.to_uppercase()),
                    Some(printable("NTRDK-30808460")),
                ),
                format!("CVR_30808460_UI_{UUID}"),
            ),
            (
                "OCES3 with organizationIdentifier in a multi-valued RDN after serialNumber",
                name(&[rdn(&[
                    attr(SERIAL_NUMBER_OID, utf8(&format!("UI:DK-O:G:{UUID}"))),
                    attr(ORGANIZATION_IDENTIFIER_OID, utf8("NTRDK-30808460")),
                ])]),
                format!("CVR_30808460_UI_{UUID}"),
            ),
        ];
        for (description, subject, username) in cases {
            assert_eq!(identify(&subject), Ok(username), "{description}");
        }
    }

    #[test]
    fn refused_subjects_say_why() {
        let oces3_org = format!("UI:DK-O:G:{UUID}");
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty subject", name(&[]), "missing_serial_number"),
            (
                "no serialNumber",
                name(&[rdn(&[attr(COMMON_NAME, utf8("Karen"))])]),
                "missing_serial_number",
            ),
            (
                "two serialNumbers",
                name(&[
                    rdn(&[attr(SERIAL_NUMBER_OID, printable("CVR:19552101-UID:1"))]),
                    rdn(&[attr(SERIAL_NUMBER_OID, printable("CVR:19552101-UID:2"))]),
                ]),
                "ambiguous_serial_number",
            ),
            (
                "two serialNumbers in one RDN",
                name(&[rdn(&[
                    attr(SERIAL_NUMBER_OID, printable("CVR:19552101-UID:1")),
                    attr(SERIAL_NUMBER_OID, printable("CVR:19552101-UID:1")),
                ])]),
                "ambiguous_serial_number",
            ),
            (
                "FOCES",
                oces2_subject(printable("CVR:19552101-FID:48213567")),
                "foces_unsupported",
            ),
            (
                "personal, no id",
                oces2_subject(printable("PID:")),
                "malformed_account_id",
            ),
            (
                "personal, a slash in the id",
                oces2_subject(printable("PID:9208/2002")),
                "malformed_account_id",
            ),
            (
                "7-digit CVR",
                oces2_subject(printable("CVR:1955210-UID:1")),
                "malformed_cvr",
            ),
            (
                "9-digit CVR",
                oces2_subject(printable("CVR:195521011-UID:1")),
                "malformed_cvr",
            ),
            (
                "letters in CVR",
                oces2_subject(printable("CVR:1955210A-UID:1")),
                "malformed_cvr",
            ),
            (
                "unknown id type",
                oces2_subject(printable("CVR:19552101-XID:1")),
                "unknown_serial_number_layout",
            ),
            (
                "no id part",
                oces2_subject(printable("CVR:19552101")),
                "unknown_serial_number_layout",
            ),
            (
                "lower-case prefix",
                oces2_subject(printable("cvr:19552101-UID:1")),
                "unknown_serial_number_layout",
            ),
            (
                "empty serialNumber",
                oces2_subject(printable("")),
                "unknown_serial_number_layout",
            ),
            (
                "empty id",
                oces2_subject(printable("CVR:19552101-UID:")),
                "malformed_account_id",
            ),
            (
                "path separator in id",
                oces2_subject(utf8("CVR:19552101-UID:1/../2")),
                "malformed_account_id",
            ),
            (
                "dash in id",
                oces2_subject(printable("CVR:19552101-RID:1-2")),
                "malformed_account_id",
            ),
            (
                "control char in id",
                oces2_subject(utf8("CVR:19552101-UID:1\u{7}2")),
                "malformed_account_id",
            ),
            (
                "inner space in id",
                oces2_subject(printable("CVR:19552101-UID:1 2")),
                "malformed_account_id",
            ),
            (
                "non-ASCII id",
                oces2_subject(utf8("CVR:19552101-UID:1٣")),
                "malformed_account_id",
            ),
            (
                "65-character id",
                oces2_subject(printable(&format!("CVR:19552101-UID:{}", "1".repeat(65)))),
                "malformed_account_id",
            ),
            (
                "very long value",
                oces2_subject(utf8(&format!("CVR:19552101-UID:{}", "1".repeat(5000)))),
                "malformed_account_id",
            ),
            (
                "trailing space",
                oces2_subject(printable("CVR:19552101-UID:1 ")),
                "surrounding_whitespace",
            ),
            (
                "leading space",
                oces2_subject(printable(" CVR:19552101-UID:1")),
                "surrounding_whitespace",
            ),
            (
                "trailing newline",
                oces2_subject(utf8("CVR:19552101-UID:1\n")),
                "surrounding_whitespace",
            ),
            (
                "BMPString",
                oces2_subject(bmp("CVR:19552101-UID:1")),
                "unreadable_attribute",
            ),
            (
                "invalid UTF-8",
                oces2_subject(value(UTF8, b"CVR:19552101-UID:\xff\xfe")),
                "unreadable_attribute",
            ),
            (
                "OCES3 UUID not a UUID",
                oces3_subject("UI:DK-O:G:not-a-uuid", Some(utf8("NTRDK-30808460"))),
                "malformed_account_id",
            ),
            (
                "OCES3 UUID without dashes",
                oces3_subject(
                    "UI:DK-O:G:6f0a2c5e8b1d4e3f9a7c2d4b6e8f0a1c",
                    Some(utf8("NTRDK-30808460")),
                ),
                "malformed_account_id",
            ),
            (
                "OCES3 UUID in braces",
                oces3_subject(
                    &format!("UI:DK-O:G:{{{UUID}}}"),
                    Some(utf8("NTRDK-30808460")),
                ),
                "malformed_account_id",
            ),
            (
                "OCES3 unknown sub-type",
                oces3_subject(&format!("UI:DK-P:G:{UUID}"), Some(utf8("NTRDK-30808460"))),
                "unknown_serial_number_layout",
            ),
            (
                "OCES3 without organizationIdentifier",
                oces3_subject(&oces3_org, None),
                "missing_organization_identifier",
            ),
            (
                "OCES3 with two organizationIdentifiers",
                name(&[
                    rdn(&[attr(ORGANIZATION_IDENTIFIER_OID, utf8("NTRDK-30808460"))]),
                    rdn(&[attr(ORGANIZATION_IDENTIFIER_OID, utf8("NTRDK-11223344"))]),
                    rdn(&[attr(SERIAL_NUMBER_OID, utf8(&oces3_org))]),
                ]),
                "ambiguous_organization_identifier",
            ),
            (
                "NTRDK with letters",
                oces3_subject(&oces3_org, Some(utf8("NTRDK-ABC"))),
                "malformed_organization_identifier",
            ),
            (
                "foreign registry",
                oces3_subject(&oces3_org, Some(utf8("NTRSE-5560000000"))),
                "malformed_organization_identifier",
            ),
            (
                "NTRDK with 7 digits",
                oces3_subject(&oces3_org, Some(utf8("NTRDK-3080846"))),
                "malformed_organization_identifier",
            ),
            (
                "organizationIdentifier with trailing space",
                oces3_subject(&oces3_org, Some(utf8("NTRDK-30808460 "))),
                "surrounding_whitespace",
            ),
            (
                "organizationIdentifier as BMPString",
                oces3_subject(&oces3_org, Some(bmp("NTRDK-30808460"))),
                "unreadable_attribute",
            ),
        ];
        for (description, subject, code) in cases {
            assert_eq!(identify(&subject), Err(code), "{description}");
        }
    }

    #[test]
    fn refusal_messages_quote_values_safely() {
        let refusal = |subject: Vec<u8>| {
            let (_, subject) = X509Name::from_der(&subject).unwrap();
            identity_from_subject(&subject).unwrap_err().to_string()
        };
        let message = refusal(oces2_subject(utf8("CVR:19552101-UID:1\u{7}\n2")));
        assert!(message.contains(r#""1\u{7}\n2""#), "{message}");
        let message = refusal(oces2_subject(utf8(&format!(
            "CVR:19552101-UID:{}",
            "7".repeat(5000)
        ))));
        assert!(message.len() < 300 && message.contains('…'), "{message}");
        assert_eq!(
            refusal(oces2_subject(printable("CVR:19552101-FID:1"))),
            "FOCES (function) certificates are not supported"
        );
    }

    #[test]
    fn identity_labels_and_der_errors() {
        let identity = OcesIdentity {
            cvr: Some("30808460".into()),
            account: Account::Ui(UUID.into()),
            kind: CertificateKind::Oces3Employee,
        };
        assert_eq!(identity.account_label(), format!("UI_{UUID}"));
        assert_eq!(identity.username(), format!("CVR_30808460_UI_{UUID}"));
        assert_eq!(identity.clone().of_company(), Ok(identity));

        let subject = oces2_subject(printable("PID:9208-2002-2-123456789012"));
        let (_, subject) = X509Name::from_der(&subject).unwrap();
        let person = identity_from_subject(&subject).unwrap();
        assert_eq!(person.cvr, None);
        assert_eq!(person.kind, CertificateKind::Personal);
        assert_eq!(person.username(), "PID_9208-2002-2-123456789012");
        assert_eq!(
            person.of_company(),
            Err(IdentityRefusal::PersonalCertificate)
        );
        assert_eq!(
            identity_from_der(b"not a certificate").unwrap_err().code(),
            "not_an_x509_certificate"
        );
        assert_eq!(
            identity_from_der(&[]).unwrap_err().code(),
            "not_an_x509_certificate"
        );
    }
}
