//! FTP replies: a code and one or more lines of text, written as RFC 959 requires.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: `code-first`, the middle lines indented by one space, `code last`.
    pub fn multiline(code: u16, lines: Vec<String>) -> Reply {
        debug_assert!(!lines.is_empty());
        Reply { code, lines }
    }

    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            // A reply line never carries CR or LF from a file name or a message.
            let line = line.replace(['\r', '\n'], " ");
            if i == 0 && last == 0 {
                let _ = write!(out, "{} {}\r\n", self.code, line);
            } else if i == 0 {
                let _ = write!(out, "{}-{}\r\n", self.code, line);
            } else if i == last {
                let _ = write!(out, "{} {}\r\n", self.code, line);
            } else {
                let _ = write!(out, " {line}\r\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multiline_replies_follow_rfc959() {
        assert_eq!(Reply::new(200, "OK").to_wire(), "200 OK\r\n");
        let feat = Reply::multiline(211, vec!["Features:".into(), "UTF8".into(), "End".into()]);
        assert_eq!(feat.to_wire(), "211-Features:\r\n UTF8\r\n211 End\r\n");
        assert_eq!(Reply::new(550, "a\r\nb").to_wire(), "550 a  b\r\n");
    }
}
