//! The error catalogue: the code, message and resolution that a status_0 file reports, as data
//! (`errors.toml`, from the client guide) that operators and backends can extend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const BUILTIN_ERRORS: &str = include_str!("../errors.toml");

pub const FILENAME_CANNOT_BE_REUSED: &str = "FILENAME_CANNOT_BE_REUSED_FOR_TRANSACTION";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEntry {
    pub code: String,
    pub message: String,
    pub resolution: String,
}

/// The longest error message or resolution a status file carries, in bytes.
pub const MAX_ERROR_TEXT: usize = 1000;
/// The longest error code, in bytes.
pub const MAX_ERROR_CODE: usize = 100;

/// Why an error entry cannot go into a status file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorEntryProblem {
    #[error("code must be 1 to {MAX_ERROR_CODE} characters of A-Z, 0-9 and _")]
    Code,
    #[error("message must be 1 to {MAX_ERROR_TEXT} bytes")]
    MessageLength,
    #[error("resolution must be at most {MAX_ERROR_TEXT} bytes")]
    ResolutionLength,
    #[error("{field}: {problem}")]
    NotXmlText {
        field: &'static str,
        problem: crate::xml_text::NotXmlText,
    },
}

impl ErrorEntry {
    /// Accepts an entry a backend reports if a status file can carry it as it is.
    pub fn check(&self) -> Result<(), ErrorEntryProblem> {
        if !is_error_code(&self.code) || self.code.len() > MAX_ERROR_CODE {
            return Err(ErrorEntryProblem::Code);
        }
        if self.message.trim().is_empty() || self.message.len() > MAX_ERROR_TEXT {
            return Err(ErrorEntryProblem::MessageLength);
        }
        if self.resolution.len() > MAX_ERROR_TEXT {
            return Err(ErrorEntryProblem::ResolutionLength);
        }
        for (field, text) in [("message", &self.message), ("resolution", &self.resolution)] {
            crate::xml_text::check_xml_text(text)
                .map_err(|problem| ErrorEntryProblem::NotXmlText { field, problem })?;
        }
        Ok(())
    }
}

/// `UPPER_SNAKE_CASE`, digits allowed.
fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorCatalogueError {
    #[error("error catalogue is not valid TOML: {0}")]
    Parse(String),
    #[error("error code {0:?} is listed twice")]
    Duplicate(String),
    #[error("error code {0:?} is not of the form UPPER_SNAKE_CASE")]
    BadCode(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCatalogue {
    entries: BTreeMap<String, ErrorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorFile {
    error: Vec<ErrorEntry>,
}

impl ErrorCatalogue {
    /// The errors of the client guide.
    pub fn builtin() -> ErrorCatalogue {
        ErrorCatalogue::from_toml(BUILTIN_ERRORS).expect("the shipped errors.toml is valid")
    }

    pub fn from_toml(text: &str) -> Result<ErrorCatalogue, ErrorCatalogueError> {
        let file: ErrorFile =
            toml::from_str(text).map_err(|e| ErrorCatalogueError::Parse(e.to_string()))?;
        let mut catalogue = ErrorCatalogue {
            entries: BTreeMap::new(),
        };
        for entry in file.error {
            catalogue.add(entry)?;
        }
        Ok(catalogue)
    }

    /// Adds an error (an operator's or a backend's own).
    pub fn add(&mut self, entry: ErrorEntry) -> Result<(), ErrorCatalogueError> {
        if !is_error_code(&entry.code) {
            return Err(ErrorCatalogueError::BadCode(entry.code));
        }
        if self.entries.contains_key(&entry.code) {
            return Err(ErrorCatalogueError::Duplicate(entry.code));
        }
        self.entries.insert(entry.code.clone(), entry);
        Ok(())
    }

    pub fn get(&self, code: &str) -> Option<&ErrorEntry> {
        self.entries.get(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_guide_errors_are_shipped() {
        let catalogue = ErrorCatalogue::builtin();
        let reuse = catalogue.get(FILENAME_CANNOT_BE_REUSED).unwrap();
        assert_eq!(
            reuse.message,
            "The filename provided has already been used for previous transaction"
        );
        assert_eq!(reuse.resolution, "Resubmit the file with a new filename");
        for code in [
            "FILE_NOT_UPLOADED_IN_ASCII_MODE",
            "RECORD_LENGTH_INCORRECT",
            "FIRST_RECORD_INCORRECT",
            "LAST_RECORD_INCORRECT",
        ] {
            assert!(catalogue.get(code).is_some(), "{code}");
        }
        assert_eq!(
            catalogue.get("LAST_RECORD_INCORRECT").unwrap().resolution,
            "Fix last line and upload file again"
        );
    }

    #[test]
    fn operators_can_extend_it_but_not_with_duplicates_or_odd_codes() {
        let mut catalogue = ErrorCatalogue::builtin();
        let entry = |code: &str| ErrorEntry {
            code: code.into(),
            message: "m".into(),
            resolution: "r".into(),
        };
        catalogue.add(entry("MANIFEST_SCHEMA_INVALID")).unwrap();
        assert!(catalogue.get("MANIFEST_SCHEMA_INVALID").is_some());
        assert_eq!(
            catalogue.add(entry("MANIFEST_SCHEMA_INVALID")),
            Err(ErrorCatalogueError::Duplicate(
                "MANIFEST_SCHEMA_INVALID".into()
            ))
        );
        assert_eq!(
            catalogue.add(entry("bad code")),
            Err(ErrorCatalogueError::BadCode("bad code".into()))
        );
        assert!(matches!(
            ErrorCatalogue::from_toml("[[error]]\ncode = 1"),
            Err(ErrorCatalogueError::Parse(_))
        ));
    }
}
