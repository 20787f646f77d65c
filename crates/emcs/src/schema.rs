//! The schemas of the EMCS functional messages, and an IE message's validation against the
//! schema its namespace names: version 3.13 as seed 004 publishes it (`schema/v3.13`), 3.23
//! as SKAT's test data has it (`schema/v3.23`). The validator is the `xmlschema` crate; each
//! message type's schema is parsed once, when a message of that type and version first comes.
//!
//! Where a message breaks its schema decides who answers it ([`Request::check_message_format`]):
//! EMCS answers a message whose Header is sound with an IE917 (XML negative acknowledgement)
//! that correlates to the message's `MessageIdentifier`, as SKAT's test system answers its
//! `*-triggers-ie917-response.xml` inputs. A message that cannot be correlated (its Header or
//! root breaks the schema, or there is no schema for its type) is error 400, which the
//! gateway answers without troubling EMCS.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::answer::GatewayError;
use crate::message::{IeMessage, SchemaVersion};
use crate::request::Request;

mod files {
    include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));
}

/// At most this many violations are kept of one message (an IE917 carries at most 999).
const MAX_VIOLATIONS: usize = 999;

/// One way a message breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as a path of local names from the message's root (`/IE815/Body/…[1]/…`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Why an IE message is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaRefusal {
    #[error("EMCS {version} has no message {message_type}")]
    NoSchema {
        message_type: String,
        version: &'static str,
    },
    #[error("the message breaks its schema at {}: {}", .0[0].path, .0[0].message)]
    Invalid(Vec<Violation>),
    /// An embedded schema did not parse: the gateway's fault, not the caller's.
    #[error("the schema of {message_type} {version} cannot be read: {reason}")]
    Unreadable {
        message_type: String,
        version: &'static str,
        reason: String,
    },
}

impl SchemaRefusal {
    /// The violations, if every one is inside the message's Body, so that its Header can be
    /// trusted to correlate an answer.
    pub fn body_violations(&self, message_type: &str) -> Option<&[Violation]> {
        let Self::Invalid(violations) = self else {
            return None;
        };
        let body = format!("/{message_type}/Body");
        violations
            .iter()
            .all(|violation| {
                violation
                    .path
                    .strip_prefix(&body)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '[']))
            })
            .then_some(violations.as_slice())
    }
}

impl SchemaVersion {
    /// `3.13`, `3.23`: as the namespace writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3_13 => "3.13",
            Self::V3_23 => "3.23",
        }
    }

    fn directory(self) -> &'static str {
        match self {
            Self::V3_13 => "v3.13",
            Self::V3_23 => "v3.23",
        }
    }
}

/// The embedded schema files of one version, by file name, each `schemaLocation` in them
/// prefixed with the importing file's name (`tms.xsd/types.xsd`). `xmlschema` reads each
/// location once per schema set and gives its types to the first importer only; without the
/// prefix, `tms.xsd`'s references into `types.xsd` (which `ie815.xsd` imported first) would
/// resolve to nothing and the Header's dates and times would go unchecked.
struct VersionFiles(HashMap<&'static str, String>);

impl VersionFiles {
    /// The files of `version`, prepared once for every schema of that version.
    fn of(version: SchemaVersion) -> &'static Self {
        static V3_13: OnceLock<VersionFiles> = OnceLock::new();
        static V3_23: OnceLock<VersionFiles> = OnceLock::new();
        let prepared = match version {
            SchemaVersion::V3_13 => &V3_13,
            SchemaVersion::V3_23 => &V3_23,
        };
        prepared.get_or_init(|| {
            let prefix = format!("{}/", version.directory());
            Self(
                files::SCHEMAS
                    .iter()
                    .filter_map(|(path, text)| {
                        let name = path.strip_prefix(&prefix)?;
                        let located =
                            text.replace("schemaLocation=\"", &format!("schemaLocation=\"{name}/"));
                        Some((name, located))
                    })
                    .collect(),
            )
        })
    }
}

impl xmlschema::SchemaSource for VersionFiles {
    fn fetch(&self, location: &str) -> Option<&str> {
        let name = location.rsplit('/').next()?;
        self.0.get(name).map(String::as_str)
    }
}

type Parsed = OnceLock<Result<xmlschema::Schema, String>>;

/// Every message schema (`ie<n>.xsd`) of every version, each parsed on first use.
fn schemas() -> &'static HashMap<(SchemaVersion, String), Parsed> {
    static SCHEMAS: OnceLock<HashMap<(SchemaVersion, String), Parsed>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut schemas = HashMap::new();
        for version in [SchemaVersion::V3_13, SchemaVersion::V3_23] {
            let prefix = format!("{}/ie", version.directory());
            for (path, _) in files::SCHEMAS {
                if let Some(digits) = path.strip_prefix(&prefix)
                    && let Some(digits) = digits.strip_suffix(".xsd")
                {
                    schemas.insert((version, format!("IE{digits}")), OnceLock::new());
                }
            }
        }
        schemas
    })
}

/// The schema of `message_type` in `version`.
fn schema(
    version: SchemaVersion,
    message_type: &str,
) -> Result<&'static xmlschema::Schema, SchemaRefusal> {
    let parsed = schemas()
        .get(&(version, message_type.to_owned()))
        .ok_or_else(|| SchemaRefusal::NoSchema {
            message_type: message_type.to_owned(),
            version: version.as_str(),
        })?;
    parsed
        .get_or_init(|| {
            let source = VersionFiles::of(version);
            let file = format!("{}.xsd", message_type.to_ascii_lowercase());
            let text = xmlschema::SchemaSource::fetch(source, &file)
                .ok_or_else(|| format!("{file} is not embedded"))?;
            xmlschema::parse_schema_with(text, source).map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|reason| SchemaRefusal::Unreadable {
            message_type: message_type.to_owned(),
            version: version.as_str(),
            reason: reason.clone(),
        })
}

impl IeMessage<'_, '_> {
    /// Validates the message against the schema of its type and version.
    pub fn validate(&self) -> Result<(), SchemaRefusal> {
        let schema = schema(self.version, self.message_type)?;
        let text = mftgw_wssec::c14n::exclusive(self.root);
        let document = oxml::parse(&text).map_err(|error| {
            SchemaRefusal::Invalid(vec![Violation {
                path: format!("/{}", self.message_type),
                message: error.to_string(),
            }])
        })?;
        let report = xmlschema::validate(&document, schema);
        if report.is_valid() {
            return Ok(());
        }
        Err(SchemaRefusal::Invalid(
            report
                .violations
                .into_iter()
                .take(MAX_VIOLATIONS)
                .map(|violation| Violation {
                    path: violation.path,
                    message: violation.message,
                })
                .collect(),
        ))
    }
}

impl Request<'_, '_> {
    /// Seed 004's error 400 for the request's IE message, if it has one: the message is not
    /// an IE message of a version the gateway takes, or breaks its schema where EMCS could not
    /// correlate an IE917 to it. A message whose Body alone breaks its schema passes: EMCS
    /// answers it with an IE917. An embedded schema that does not parse is error 1000.
    pub fn check_message_format(&self) -> Result<(), GatewayError> {
        let Some(message) = self.ie_message()? else {
            return Ok(());
        };
        match message.validate() {
            Ok(()) => Ok(()),
            Err(refusal) if refusal.body_violations(message.message_type).is_some() => Ok(()),
            Err(SchemaRefusal::Unreadable { .. }) => Err(GatewayError::Technical),
            Err(_) => Err(GatewayError::InvalidFormat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SKAT's sample IE documents (3.23), by file name.
    const SAMPLES: &[(&str, &str)] = &[
        ("ie810.xml", include_str!("samples/ie810.xml")),
        ("ie813.xml", include_str!("samples/ie813.xml")),
        ("ie815.xml", include_str!("samples/ie815.xml")),
        ("ie818.xml", include_str!("samples/ie818.xml")),
        ("ie819.xml", include_str!("samples/ie819.xml")),
        ("ie837.xml", include_str!("samples/ie837.xml")),
        ("ie871.xml", include_str!("samples/ie871.xml")),
        (
            "ie815-trigger-error-104.xml",
            include_str!("samples/ie815-trigger-error-104.xml"),
        ),
    ];

    const TRIGGERS: &[(&str, &str)] = &[
        (
            "ie815-triggers-ie917-response.xml",
            include_str!("samples/ie815-triggers-ie917-response.xml"),
        ),
        (
            "ie818-triggers-ie917-response.xml",
            include_str!("samples/ie818-triggers-ie917-response.xml"),
        ),
        (
            "ie810-triggers-ie917-response.xml",
            include_str!("samples/ie810-triggers-ie917-response.xml"),
        ),
        (
            "ie871-triggers-ie917-response.xml",
            include_str!("samples/ie871-triggers-ie917-response.xml"),
        ),
    ];

    /// The result of validating `text`, an IE document, as its namespace says.
    fn validate(text: &str) -> (String, Result<(), SchemaRefusal>) {
        let document = roxmltree::Document::parse(text).unwrap();
        let root = document.root_element();
        let namespace = root.tag_name().namespace().unwrap();
        let version = match namespace.rsplit_once(":V").unwrap().1 {
            "3.13" => SchemaVersion::V3_13,
            "3.23" => SchemaVersion::V3_23,
            other => panic!("version {other}"),
        };
        let message = IeMessage {
            root,
            message_type: root.tag_name().name(),
            version,
        };
        (message.message_type.to_owned(), message.validate())
    }

    #[test]
    fn every_embedded_message_schema_parses() {
        let parsed: Vec<_> = schemas()
            .keys()
            .map(|(version, message_type)| schema(*version, message_type).map(|_| ()))
            .collect();
        assert_eq!(parsed.len(), 46 + 42, "IE schemas of 3.13 and 3.23");
        for result in parsed {
            result.unwrap();
        }
    }

    #[test]
    fn skats_samples_are_valid_in_both_versions() {
        for (name, text) in SAMPLES {
            assert_eq!(validate(text).1, Ok(()), "{name}");
            let older = text.replace("V3.23", "V3.13");
            assert_eq!(validate(&older).1, Ok(()), "{name} as 3.13");
        }
    }

    #[test]
    fn skats_trigger_inputs_break_their_schema_in_the_body_only() {
        for (name, text) in TRIGGERS {
            let (message_type, result) = validate(text);
            let refusal = result.expect_err(name);
            assert!(
                refusal.body_violations(&message_type).is_some(),
                "{name}: {refusal:?}"
            );
        }
        let (_, result) = validate(TRIGGERS[0].1);
        let SchemaRefusal::Invalid(violations) = result.unwrap_err() else {
            panic!("not a violation");
        };
        assert_eq!(
            violations[0].path,
            "/IE815/Body/SubmittedDraftOfEADESAD/TransportDetails[1]/TransportUnitCode"
        );
        assert!(violations[0].message.contains("9999999"), "{violations:?}");
    }

    #[test]
    fn a_broken_header_or_root_is_not_in_the_body() {
        let ie815 = SAMPLES[2].1;
        let date = "<tms:DateOfPreparation>2011-10-26</tms:DateOfPreparation>";
        assert!(ie815.contains(date));
        let not_a_date = ie815.replace(
            date,
            "<tms:DateOfPreparation>26.10.2011</tms:DateOfPreparation>",
        );
        let (message_type, result) = validate(&not_a_date);
        let refusal = result.unwrap_err();
        assert!(
            refusal.body_violations(&message_type).is_none(),
            "{refusal:?}"
        );
        assert!(
            refusal
                .to_string()
                .contains("/IE815/Header/DateOfPreparation"),
            "{refusal}"
        );

        let (open, close) = ("<ie:Header ", "</ie:Header>");
        let no_header = ie815
            .replacen(open, "<ie:Heading ", 1)
            .replacen(close, "</ie:Heading>", 1);
        let (message_type, result) = validate(&no_header);
        let refusal = result.unwrap_err();
        assert!(
            refusal.body_violations(&message_type).is_none(),
            "{refusal:?}"
        );

        let no_schema = ie815.replace("IE815", "IE999");
        let (message_type, result) = validate(&no_schema);
        let refusal = result.unwrap_err();
        assert_eq!(
            refusal,
            SchemaRefusal::NoSchema {
                message_type: "IE999".into(),
                version: "3.23"
            }
        );
        assert!(refusal.body_violations(&message_type).is_none());
    }
}
