//! eKapital Classic record formats (SPEC §5): which services take fixed-width record files,
//! and a streaming check of an upload against its service's format. The formats are data
//! (`record_formats.toml`); the check sees each byte once and keeps only the current record's
//! head, so it runs while the upload streams in, whatever its size.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

const BUILTIN_FORMATS: &str = include_str!("../record_formats.toml");

/// Marks the start and end records.
const FIRST_RECORD_TYPE: &[u8] = b"0001";
const LAST_RECORD_TYPE: &[u8] = b"9998";

pub const NOT_ASCII: &str = "FILE_NOT_UPLOADED_IN_ASCII_MODE";
pub const RECORD_LENGTH_INCORRECT: &str = "RECORD_LENGTH_INCORRECT";
pub const FIRST_RECORD_INCORRECT: &str = "FIRST_RECORD_INCORRECT";
pub const LAST_RECORD_INCORRECT: &str = "LAST_RECORD_INCORRECT";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFormat {
    pub service: String,
    /// Bytes per record, without the line ending.
    pub record_length: usize,
    /// Where the start record carries the area's file number (0-based byte offset).
    pub file_number_at: usize,
    /// The file numbers this area accepts in its start record.
    pub file_numbers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordFormatError {
    #[error("record formats are not valid TOML in the expected shape: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("service {0:?} has more than one record format")]
    Duplicate(String),
    #[error(
        "the record format of {0:?} is impossible: its file numbers must fit in a record after the record type"
    )]
    Impossible(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatsFile {
    #[serde(default)]
    format: Vec<RecordFormat>,
}

/// The record formats by service.
#[derive(Debug, Clone, Default)]
pub struct RecordFormats {
    by_service: HashMap<String, Arc<RecordFormat>>,
}

impl RecordFormats {
    pub fn builtin() -> RecordFormats {
        RecordFormats::from_toml(BUILTIN_FORMATS).expect("the shipped record_formats.toml is valid")
    }

    pub fn from_toml(text: &str) -> Result<RecordFormats, RecordFormatError> {
        let file: FormatsFile = toml::from_str(text)?;
        let mut by_service = HashMap::new();
        for format in file.format {
            let fits = format.file_number_at >= FIRST_RECORD_TYPE.len()
                && format.file_numbers.iter().all(|number| {
                    !number.is_empty()
                        && format.file_number_at + number.len() <= format.record_length
                });
            if !fits {
                return Err(RecordFormatError::Impossible(format.service));
            }
            let service = format.service.clone();
            if by_service
                .insert(service.clone(), Arc::new(format))
                .is_some()
            {
                return Err(RecordFormatError::Duplicate(service));
            }
        }
        Ok(RecordFormats { by_service })
    }

    pub fn get(&self, service: &str) -> Option<Arc<RecordFormat>> {
        self.by_service.get(service).cloned()
    }
}

/// Checks an upload against a record format as its bytes arrive. The first problem in file
/// order decides the error, except that a binary-mode upload is refused as such.
#[derive(Debug)]
pub struct RecordCheck {
    format: Arc<RecordFormat>,
    /// The head of the record being read: enough for its type and the file number.
    head: Vec<u8>,
    /// Bytes of the record being read so far, including a trailing `\r`.
    length: usize,
    ends_with_cr: bool,
    records: u64,
    last_record_type_ok: bool,
    error: Option<&'static str>,
}

impl RecordCheck {
    pub fn new(format: Arc<RecordFormat>) -> RecordCheck {
        RecordCheck {
            format,
            head: Vec::new(),
            length: 0,
            ends_with_cr: false,
            records: 0,
            last_record_type_ok: false,
            error: None,
        }
    }

    fn head_len(&self) -> usize {
        let longest_number = self.format.file_numbers.iter().map(String::len).max();
        self.format.file_number_at + longest_number.unwrap_or(0)
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        while !bytes.is_empty() {
            let (line, rest, ends_record) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            let wanted = self.head_len().saturating_sub(self.head.len());
            self.head.extend_from_slice(&line[..wanted.min(line.len())]);
            self.length += line.len();
            if let Some(&last) = line.last() {
                self.ends_with_cr = last == b'\r';
            }
            if ends_record {
                self.end_record();
                if self.error.is_some() {
                    return;
                }
            }
            bytes = rest;
        }
    }

    fn end_record(&mut self) {
        let length = self.length - usize::from(self.ends_with_cr);
        self.records += 1;
        if self.records == 1 && !self.is_start_record() {
            self.error = Some(FIRST_RECORD_INCORRECT);
        } else if length != self.format.record_length {
            self.error = Some(RECORD_LENGTH_INCORRECT);
        }
        self.last_record_type_ok = self.head.starts_with(LAST_RECORD_TYPE);
        self.head.clear();
        self.length = 0;
        self.ends_with_cr = false;
    }

    fn is_start_record(&self) -> bool {
        let at = self.format.file_number_at;
        self.head.starts_with(FIRST_RECORD_TYPE)
            && self
                .format
                .file_numbers
                .iter()
                .any(|number| self.head.get(at..at + number.len()) == Some(number.as_bytes()))
    }

    /// The error code for the whole upload, if any; `ascii` says whether it came in
    /// `TYPE A`.
    pub fn finish(mut self, ascii: bool) -> Option<&'static str> {
        if !ascii {
            return Some(NOT_ASCII);
        }
        if self.error.is_none() && self.length > 0 {
            // A last record without a line ending.
            self.end_record();
        }
        if let Some(error) = self.error {
            return Some(error);
        }
        if self.records == 0 {
            return Some(FIRST_RECORD_INCORRECT);
        }
        (!self.last_record_type_ok).then_some(LAST_RECORD_INCORRECT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> Arc<RecordFormat> {
        Arc::new(RecordFormat {
            service: "TEST".into(),
            record_length: 20,
            file_number_at: 8,
            file_numbers: vec!["0314315255".into()],
        })
    }

    fn record(kind: &str, file_number: &str) -> String {
        let mut record = format!("{kind}1234{file_number}");
        record.truncate(20);
        format!("{record:<20}")
    }

    fn valid_file(ending: &str) -> String {
        [
            record("0001", "0314315255"),
            record("2253", "x"),
            record("2253", "y"),
            record("9998", ""),
        ]
        .join(ending)
            + ending
    }

    fn check(content: &str, ascii: bool, chunk: usize) -> Option<&'static str> {
        let mut check = RecordCheck::new(format());
        for piece in content.as_bytes().chunks(chunk.max(1)) {
            check.update(piece);
        }
        check.finish(ascii)
    }

    #[test]
    fn a_valid_file_passes_however_it_is_chunked_and_whatever_its_line_endings() {
        for ending in ["\r\n", "\n"] {
            let file = valid_file(ending);
            for chunk in [1, 2, 7, 21, 22, 1000] {
                assert_eq!(check(&file, true, chunk), None, "{ending:?} {chunk}");
            }
            let without_final_ending = file.trim_end_matches(ending);
            assert_eq!(check(without_final_ending, true, 5), None);
        }
    }

    #[test]
    fn each_error_is_found() {
        let file = valid_file("\r\n");
        assert_eq!(check(&file, false, 64), Some(NOT_ASCII));
        assert_eq!(check("", true, 64), Some(FIRST_RECORD_INCORRECT));
        let wrong_number = file.replacen("0314315255", "0314315256", 1);
        assert_eq!(check(&wrong_number, true, 3), Some(FIRST_RECORD_INCORRECT));
        let wrong_type = file.replacen("0001", "0002", 1);
        assert_eq!(check(&wrong_type, true, 3), Some(FIRST_RECORD_INCORRECT));
        let long_record = file.replacen("2253", "22533", 1);
        assert_eq!(check(&long_record, true, 4), Some(RECORD_LENGTH_INCORRECT));
        let blank_line = file.replacen("\r\n", "\r\n\r\n", 2);
        assert_eq!(check(&blank_line, true, 4), Some(RECORD_LENGTH_INCORRECT));
        let no_end = file.replace("9998", "2253");
        assert_eq!(check(&no_end, true, 9), Some(LAST_RECORD_INCORRECT));
        let only_start = record("0001", "0314315255") + "\r\n";
        assert_eq!(check(&only_start, true, 9), Some(LAST_RECORD_INCORRECT));
    }

    #[test]
    fn the_first_problem_in_file_order_decides() {
        let file = valid_file("\n")
            .replacen("0314315255", "0000000000", 1)
            .replace("9998", "2253");
        assert_eq!(check(&file, true, 64), Some(FIRST_RECORD_INCORRECT));
    }

    #[test]
    fn formats_load_from_toml_and_refuse_impossible_or_duplicate_entries() {
        let formats = RecordFormats::builtin();
        for (service, length) in [("AKFA", 230), ("CPS", 868)] {
            assert_eq!(
                formats.get(service).unwrap().record_length,
                length,
                "{service}"
            );
        }
        assert!(formats.get("FTPSGW.Heartbeat").is_none());
        let entry = "[[format]]\nservice = \"X\"\nrecord_length = 10\nfile_number_at = 8\nfile_numbers = [\"123\"]\n";
        assert!(matches!(
            RecordFormats::from_toml(entry),
            Err(RecordFormatError::Impossible(_))
        ));
        let fine = entry.replace("record_length = 10", "record_length = 30");
        assert!(RecordFormats::from_toml(&fine).is_ok());
        assert!(matches!(
            RecordFormats::from_toml(&format!("{fine}{fine}")),
            Err(RecordFormatError::Duplicate(_))
        ));
    }
}
