//! Bounded XML parsing: what a SOAP endpoint accepts from anyone before it knows who sent it.
//! No DTD (so no entities beyond the five predefined ones, no external anything), and limits
//! on size, node count, nesting depth, attributes per element and namespaces in scope at an
//! element, each refusal saying which limit was hit.

use roxmltree::{Document, Node, ParsingOptions};

/// How much XML a caller may make the parser hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_nodes: u32,
    /// Elements inside elements, the document element being depth 1.
    pub max_depth: usize,
    pub max_attributes: usize,
    /// Namespaces in scope at any element, declared there or by its ancestors.
    pub max_namespaces: usize,
}

impl Default for Limits {
    /// Room for an EMCS message (a few hundred KiB of IE document), not for a bomb.
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_nodes: 200_000,
            max_depth: 64,
            max_attributes: 32,
            max_namespaces: 64,
        }
    }
}

/// Why a document was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the document is {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("the document is not UTF-8")]
    NotUtf8,
    #[error("a document type declaration (DTD) is not accepted")]
    Dtd,
    #[error("the document has more than {0} nodes")]
    TooManyNodes(u32),
    #[error("elements are nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("an element has more than {0} attributes")]
    TooManyAttributes(usize),
    #[error("more than {0} namespaces are in scope at an element")]
    TooManyNamespaces(usize),
    #[error("not well-formed XML: {0}")]
    Malformed(String),
}

/// Parses `text` within `limits`.
pub fn parse<'input>(text: &'input str, limits: &Limits) -> Result<Document<'input>, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..ParsingOptions::default()
    };
    let document = Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected => XmlError::Dtd,
        roxmltree::Error::NodesLimitReached => XmlError::TooManyNodes(limits.max_nodes),
        error => XmlError::Malformed(error.to_string()),
    })?;
    check_shape(document.root_element(), limits)?;
    Ok(document)
}

/// Parses `bytes` as UTF-8 XML within `limits`.
pub fn parse_bytes<'input>(
    bytes: &'input [u8],
    limits: &Limits,
) -> Result<Document<'input>, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    parse(
        std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?,
        limits,
    )
}

/// Depth, attributes and namespaces, without recursion (the depth is what is being checked):
/// nodes come in document order, so the open elements above a node are a stack, at most
/// `max_depth` deep.
fn check_shape(root: Node<'_, '_>, limits: &Limits) -> Result<(), XmlError> {
    let mut open: Vec<roxmltree::NodeId> = Vec::with_capacity(limits.max_depth);
    for node in root.descendants().filter(Node::is_element) {
        let parent = node.parent().map(|parent| parent.id());
        while open.last().is_some_and(|&last| Some(last) != parent) {
            open.pop();
        }
        if open.len() == limits.max_depth {
            return Err(XmlError::TooDeep(limits.max_depth));
        }
        open.push(node.id());
        if node.attributes().len() > limits.max_attributes {
            return Err(XmlError::TooManyAttributes(limits.max_attributes));
        }
        if node.namespaces().len() > limits.max_namespaces {
            return Err(XmlError::TooManyNamespaces(limits.max_namespaces));
        }
    }
    Ok(())
}

/// The base64 text of `element` decoded, whitespace ignored (senders wrap long values);
/// `None` if it is not base64.
pub fn base64_content(element: Node<'_, '_>) -> Option<Vec<u8>> {
    use base64::Engine;
    let text: String = element
        .text()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str, limits: Limits) -> XmlError {
        parse(text, &limits).unwrap_err()
    }

    #[test]
    fn each_limit_is_named_when_it_is_hit() {
        let limits = Limits {
            max_bytes: 200,
            max_nodes: 20,
            max_depth: 3,
            max_attributes: 2,
            max_namespaces: 2,
        };
        assert_eq!(
            refusal(&format!("<a>{}</a>", "x".repeat(300)), limits),
            XmlError::TooLarge {
                size: 307,
                limit: 200
            }
        );
        assert_eq!(
            refusal("<a><b><c><d/></c></b></a>", limits),
            XmlError::TooDeep(3)
        );
        assert!(parse("<a><b><c/></b></a>", &limits).is_ok());
        assert_eq!(
            refusal("<a x='1' y='2' z='3'/>", limits),
            XmlError::TooManyAttributes(2)
        );
        assert_eq!(
            refusal("<a xmlns:p='u1' xmlns:q='u2' xmlns:r='u3'/>", limits),
            XmlError::TooManyNamespaces(2)
        );
        assert_eq!(
            refusal("<a xmlns:p='u1' xmlns:q='u2'><b xmlns:r='u3'/></a>", limits),
            XmlError::TooManyNamespaces(2),
            "inherited namespaces count"
        );
        assert!(
            parse(
                "<a xmlns:p='u1'><b xmlns:p='u2' xmlns:q='u3'/></a>",
                &limits
            )
            .is_ok()
        );
        assert_eq!(
            refusal(&format!("<a>{}</a>", "<b/>".repeat(30)), limits),
            XmlError::TooManyNodes(20)
        );
        assert_eq!(
            parse_bytes(b"<a>\xff</a>", &limits).unwrap_err(),
            XmlError::NotUtf8
        );
    }

    #[test]
    fn a_dtd_is_refused_so_no_entity_is_ever_expanded() {
        let bomb = "<?xml version='1.0'?><!DOCTYPE a [<!ENTITY x 'xxxxxxxx'><!ENTITY y '&x;&x;&x;&x;'>]><a>&y;</a>";
        assert_eq!(refusal(bomb, Limits::default()), XmlError::Dtd);
        let external = "<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a/>";
        assert_eq!(refusal(external, Limits::default()), XmlError::Dtd);
        assert!(matches!(
            refusal("<a>&unknown;</a>", Limits::default()),
            XmlError::Malformed(_)
        ));
    }
}
