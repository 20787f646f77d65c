//! Virtual paths: what a client's path argument means relative to its working directory.
//!
//! Resolution is lexical and clamped at `/`: there is no real file system underneath, so
//! `..` can never leave the user's tree. Components that no file name may hold (NUL, control
//! characters, backslash, over 255 bytes) are refused here, before the backend sees them.

use std::fmt;

pub const MAX_COMPONENT_BYTES: usize = 255;
const MAX_DEPTH: usize = 32;

/// An absolute, normalised path in the user's virtual tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VirtualPath {
    components: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path component is longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong,
    #[error("path contains a backslash")]
    Backslash,
    #[error("path contains a control character")]
    ControlCharacter,
    #[error("path is nested too deep")]
    TooDeep,
}

impl VirtualPath {
    pub fn root() -> VirtualPath {
        VirtualPath::default()
    }

    /// Resolves `argument` (absolute or relative to `self`) to a new path.
    pub fn resolve(&self, argument: &str) -> Result<VirtualPath, PathError> {
        let mut components = if argument.starts_with('/') {
            Vec::new()
        } else {
            self.components.clone()
        };
        for part in argument.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    components.pop();
                }
                name => {
                    if name.len() > MAX_COMPONENT_BYTES {
                        return Err(PathError::ComponentTooLong);
                    }
                    if name.contains('\\') {
                        return Err(PathError::Backslash);
                    }
                    if name.chars().any(char::is_control) {
                        return Err(PathError::ControlCharacter);
                    }
                    components.push(name.to_string());
                    if components.len() > MAX_DEPTH {
                        return Err(PathError::TooDeep);
                    }
                }
            }
        }
        Ok(VirtualPath { components })
    }

    pub fn parent(&self) -> VirtualPath {
        let mut components = self.components.clone();
        components.pop();
        VirtualPath { components }
    }

    pub fn components(&self) -> &[String] {
        &self.components
    }

    pub fn file_name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }

    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            return f.write_str("/");
        }
        for component in &self.components {
            write!(f, "/{component}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> VirtualPath {
        VirtualPath::root().resolve(path).unwrap()
    }

    #[test]
    fn resolves_relative_absolute_and_dot_segments() {
        let cases = [
            ("/", "out", "/out"),
            ("/out", "..", "/"),
            ("/out", "../../..", "/"),
            ("/out", "/FTPSGW.Heartbeat", "/FTPSGW.Heartbeat"),
            ("/a", "./b//c/", "/a/b/c"),
            ("/a/b", "../c", "/a/c"),
            (
                "/",
                "fil med mellemrum æøå.xml",
                "/fil med mellemrum æøå.xml",
            ),
            ("/", "", "/"),
        ];
        for (cwd, argument, expected) in cases {
            assert_eq!(at(cwd).resolve(argument).unwrap().to_string(), expected);
        }
    }

    #[test]
    fn refuses_names_no_file_may_have() {
        let root = VirtualPath::root();
        assert_eq!(root.resolve("a\\b"), Err(PathError::Backslash));
        assert_eq!(root.resolve("a\u{0}b"), Err(PathError::ControlCharacter));
        assert_eq!(root.resolve("a\u{7}b"), Err(PathError::ControlCharacter));
        assert_eq!(
            root.resolve(&"x".repeat(256)),
            Err(PathError::ComponentTooLong)
        );
        assert!(root.resolve(&"x".repeat(255)).is_ok());
        assert_eq!(root.resolve(&"a/".repeat(40)), Err(PathError::TooDeep));
    }

    #[test]
    fn exposes_parent_and_file_name() {
        let path = at("/svc/tx/in/file.xml");
        assert_eq!(path.file_name(), Some("file.xml"));
        assert_eq!(path.parent().to_string(), "/svc/tx/in");
        assert!(VirtualPath::root().parent().is_root());
    }
}
