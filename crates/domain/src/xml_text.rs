//! What XML 1.0 can carry (its `Char` production): text that goes into a status file must
//! consist of these characters, so every name and message is checked where it enters the
//! gateway, not discovered in a file that does not parse.

/// A character XML 1.0 cannot carry, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("character U+{:04X} at byte {position} cannot appear in XML", u32::from(*character))]
pub struct NotXmlText {
    pub character: char,
    pub position: usize,
}

/// Whether XML 1.0 allows `c`: tab, line feed, carriage return, and everything from U+0020
/// except the surrogates (which a `char` cannot be) and U+FFFE, U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Accepts `text` if XML 1.0 can carry every character of it.
pub fn check_xml_text(text: &str) -> Result<(), NotXmlText> {
    match text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        Some((position, character)) => Err(NotXmlText {
            character,
            position,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_1_0_character_ranges() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            'ø',
            '\u{85}',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '\u{10FFFF}',
        ] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in [
            '\0', '\u{1}', '\u{8}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
        ] {
            assert!(!is_xml_char(c), "{c:?}");
        }
        assert_eq!(
            check_xml_text("ok\u{FFFE}"),
            Err(NotXmlText {
                character: '\u{FFFE}',
                position: 2
            })
        );
        assert_eq!(
            check_xml_text("line one\r\nline two\ttabbed").map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            check_xml_text("bell\u{7}").unwrap_err().to_string(),
            "character U+0007 at byte 4 cannot appear in XML"
        );
    }
}
