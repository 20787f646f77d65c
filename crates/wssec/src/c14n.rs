//! Exclusive XML Canonicalization 1.0 without comments
//! (`http://www.w3.org/2001/10/xml-exc-c14n#`) of one element and everything inside it, the
//! only canonicalization WS-Security 1.0 and the eDelivery AS4 profile use here. There is no
//! `InclusiveNamespaces PrefixList`: a message that asks for one is refused before
//! canonicalization (see [`crate`]).
//!
//! The rules, from the W3C recommendation: an element renders the namespace declarations it
//! visibly uses (its own prefix, or the default namespace when it has none, and its
//! attributes' prefixes) unless its nearest rendered ancestor already rendered the same
//! binding; declarations sorted by prefix, the default first; attributes sorted by namespace
//! URI and then local name; `xml:*` attributes are not inherited; comments are dropped;
//! characters escaped as the recommendation lists. Prefixes are written as the document wrote
//! them, which is why the element's and attributes' qualified names are read from the source.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeType};

/// The canonical form of `element` and its descendants.
///
/// # Panics
/// If `element` is not an element node.
pub fn exclusive(element: Node<'_, '_>) -> String {
    assert!(element.is_element(), "only an element is canonicalized");
    let mut out = String::new();
    // The default namespace counts as rendered empty at the top.
    let mut rendered = BTreeMap::from([("", "")]);
    render_element(element, &mut rendered, &mut out);
    out
}

/// Renders `element` given the namespace bindings its rendered ancestors declared; `rendered`
/// is left as it was found.
fn render_element<'a>(
    element: Node<'a, '_>,
    rendered: &mut BTreeMap<&'a str, &'a str>,
    out: &mut String,
) {
    let name = qualified_name(element);
    out.push('<');
    out.push_str(name);

    let mut used: Vec<&str> = vec![prefix_of(name)];
    for attribute in element.attributes() {
        let prefix = prefix_of(attribute_qname(element, attribute));
        if !prefix.is_empty() && prefix != "xml" && !used.contains(&prefix) {
            used.push(prefix);
        }
    }
    used.sort_unstable();
    let mut restore: Vec<(&str, Option<&str>)> = Vec::new();
    for prefix in used {
        let uri = binding(element, prefix);
        if rendered.get(prefix) == Some(&uri) {
            continue;
        }
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attribute(uri, out);
        out.push('"');
        restore.push((prefix, rendered.insert(prefix, uri)));
    }

    let mut attributes: Vec<_> = element.attributes().collect();
    attributes.sort_by_key(|attribute| (attribute.namespace().unwrap_or(""), attribute.name()));
    for attribute in attributes {
        out.push(' ');
        out.push_str(attribute_qname(element, attribute));
        out.push_str("=\"");
        escape_attribute(attribute.value(), out);
        out.push('"');
    }
    out.push('>');

    for child in element.children() {
        match child.node_type() {
            NodeType::Element => render_element(child, rendered, out),
            NodeType::Text => escape_text(child.text().unwrap_or_default(), out),
            NodeType::PI => {
                if let Some(pi) = child.pi() {
                    out.push_str("<?");
                    out.push_str(pi.target);
                    if let Some(value) = pi.value {
                        out.push(' ');
                        out.push_str(value);
                    }
                    out.push_str("?>");
                }
            }
            NodeType::Comment | NodeType::Root => {}
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');

    for (prefix, previous) in restore.into_iter().rev() {
        match previous {
            Some(uri) => rendered.insert(prefix, uri),
            None => rendered.remove(prefix),
        };
    }
}

/// The URI `prefix` is bound to at `element` (`""` for the default namespace when there is
/// none).
fn binding<'a>(element: Node<'a, '_>, prefix: &str) -> &'a str {
    let prefix = (!prefix.is_empty()).then_some(prefix);
    element
        .namespaces()
        .find(|namespace| namespace.name() == prefix)
        .map_or("", |namespace| namespace.uri())
}

/// The element's name as the document wrote it: `soap:Body`, `Body`.
fn qualified_name<'a>(element: Node<'a, '_>) -> &'a str {
    let source = &element.document().input_text()[element.range()];
    let name = &source[1..];
    let end = name
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(name.len());
    &name[..end]
}

/// The attribute's name as the document wrote it: `wsu:Id`, `Algorithm`.
fn attribute_qname<'a>(element: Node<'a, '_>, attribute: roxmltree::Attribute<'a, '_>) -> &'a str {
    &element.document().input_text()[attribute.range_qname()]
}

fn prefix_of(qualified_name: &str) -> &str {
    qualified_name
        .split_once(':')
        .map_or("", |(prefix, _)| prefix)
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attribute(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str, element: &str) -> String {
        let document = roxmltree::Document::parse(text).unwrap();
        let node = document
            .descendants()
            .find(|node| node.has_tag_name(element))
            .unwrap();
        exclusive(node)
    }

    #[test]
    fn only_visibly_used_namespaces_are_rendered_once() {
        let text = r#"<soap:Envelope xmlns:soap="urn:soap" xmlns:wsu="urn:wsu" xmlns:unused="urn:x"><soap:Body wsu:Id="b1"><m:Op xmlns:m="urn:m"><m:A>1</m:A><B xmlns="urn:d"><C/></B></m:Op></soap:Body></soap:Envelope>"#;
        assert_eq!(
            canonical(text, "Body"),
            r#"<soap:Body xmlns:soap="urn:soap" xmlns:wsu="urn:wsu" wsu:Id="b1"><m:Op xmlns:m="urn:m"><m:A>1</m:A><B xmlns="urn:d"><C></C></B></m:Op></soap:Body>"#
        );
    }

    #[test]
    fn attributes_sort_by_namespace_then_name_and_namespaces_by_prefix() {
        let text = r#"<e z="1" xmlns:b="urn:b" xmlns:a="urn:a" b:y="2" a:y="3" a="4"/>"#;
        assert_eq!(
            canonical(text, "e"),
            r#"<e xmlns:a="urn:a" xmlns:b="urn:b" a="4" z="1" a:y="3" b:y="2"></e>"#
        );
    }

    #[test]
    fn an_element_leaving_the_default_namespace_says_so() {
        let text = r#"<a xmlns="urn:d"><b xmlns=""><c/></b></a>"#;
        assert_eq!(
            canonical(text, "a"),
            r#"<a xmlns="urn:d"><b xmlns=""><c></c></b></a>"#
        );
        assert_eq!(canonical(text, "b"), "<b><c></c></b>");
    }

    #[test]
    fn characters_are_escaped_as_the_recommendation_lists() {
        let text = "<a v=\"&lt;&amp;&quot;&#9;&#10;&#13;'&gt;\">&lt;&amp;&gt;&#13;\"'<!--gone--><![CDATA[<x>]]><?pi data?></a>";
        assert_eq!(
            canonical(text, "a"),
            "<a v=\"&lt;&amp;&quot;&#x9;&#xA;&#xD;'>\">&lt;&amp;&gt;&#xD;\"'&lt;x&gt;<?pi data?></a>"
        );
    }

    #[test]
    fn a_prefix_rebound_inside_is_rendered_again() {
        let text = r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"><p:c/></p:b><p:d/></p:a>"#;
        assert_eq!(
            canonical(text, "a"),
            r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"><p:c></p:c></p:b><p:d></p:d></p:a>"#
        );
    }
}
