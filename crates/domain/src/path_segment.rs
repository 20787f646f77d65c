//! The rule for a name that must stand alone as one segment of a path: a service folder,
//! an uploaded file name, a transaction id. One rule, so the catalogue and the FTPS file
//! tree cannot disagree about what is a usable name.

/// The longest name most file systems accept for one path component.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Why a string cannot be used as a single path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathSegmentError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is `.` or `..`")]
    DotName,
    #[error("the name contains a path separator (`/` or `\\`)")]
    Separator,
    #[error("the name contains a control character")]
    ControlCharacter,
    #[error("the name contains a character XML cannot carry (U+FFFE or U+FFFF)")]
    NotXmlText,
    #[error("the name is longer than {MAX_SEGMENT_BYTES} bytes")]
    TooLong,
}

/// Accepts `name` if it is a plain name that cannot escape or span directories.
pub fn check_path_segment(name: &str) -> Result<(), PathSegmentError> {
    if name.is_empty() {
        return Err(PathSegmentError::Empty);
    }
    if name == "." || name == ".." {
        return Err(PathSegmentError::DotName);
    }
    if name.contains(['/', '\\']) {
        return Err(PathSegmentError::Separator);
    }
    if name.chars().any(char::is_control) {
        return Err(PathSegmentError::ControlCharacter);
    }
    // Names end up in status files.
    if crate::xml_text::check_xml_text(name).is_err() {
        return Err(PathSegmentError::NotXmlText);
    }
    if name.len() > MAX_SEGMENT_BYTES {
        return Err(PathSegmentError::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in [
            "FATCA",
            "Manifest.AfgangsdeklarationOpret",
            "DMIValutaKurserOverførService",
            "a..b",
            ".hidden",
        ] {
            assert_eq!(check_path_segment(name), Ok(()), "{name}");
        }
        assert_eq!(check_path_segment(&"x".repeat(MAX_SEGMENT_BYTES)), Ok(()));
    }

    #[test]
    fn rejects_unusable_names() {
        let too_long = "ø".repeat(128); // 256 bytes, 128 characters
        let cases = [
            ("", PathSegmentError::Empty),
            (".", PathSegmentError::DotName),
            ("..", PathSegmentError::DotName),
            ("a/b", PathSegmentError::Separator),
            ("a\\b", PathSegmentError::Separator),
            ("a\nb", PathSegmentError::ControlCharacter),
            ("a\u{0}b", PathSegmentError::ControlCharacter),
            ("a\u{7f}b", PathSegmentError::ControlCharacter),
            ("a\u{fffe}b", PathSegmentError::NotXmlText),
            ("\u{ffff}", PathSegmentError::NotXmlText),
            (too_long.as_str(), PathSegmentError::TooLong),
        ];
        for (name, expected) in cases {
            assert_eq!(check_path_segment(name), Err(expected), "{name:?}");
        }
    }
}
