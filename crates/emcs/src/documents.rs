//! SKAT's WSDLs and their schemas, as an endpoint serves them: a service's WSDL with its
//! real address filled in (`<endpoint>?wsdl`), and every schema it includes, directly or
//! through other schemas, at `<endpoint>?xsd=<path>`. Each `schemaLocation` is rewritten to
//! such a URL, because a schema's own relative locations would resolve against the endpoint's
//! path, not the schema's.

use crate::services::Service;

mod files {
    include!(concat!(env!("OUT_DIR"), "/wsdl_files.rs"));
}

/// The WSDL of `service`, its `soap:address` set to `endpoint` (the absolute URL it is
/// served from, without a query).
pub fn wsdl(service: &Service, endpoint: &str) -> Option<String> {
    let text = file(service, &format!("{}.wsdl", service.name))?;
    let addressed = replace_attribute(&text, "location", |_| Some(endpoint.to_owned()));
    Some(with_schema_urls(&addressed, endpoint, ""))
}

/// The schema at `path` (as an `?xsd=` URL names it) of `service`'s WSDL, its locations
/// rewritten likewise; `None` if there is no such schema.
pub fn schema(service: &Service, endpoint: &str, path: &str) -> Option<String> {
    if !path.ends_with(".xsd") {
        return None;
    }
    let text = file(service, path)?;
    let directory = path.rsplit_once('/').map_or("", |(directory, _)| directory);
    Some(with_schema_urls(&text, endpoint, directory))
}

fn file(service: &Service, path: &str) -> Option<String> {
    let wanted = format!("{}/{path}", service.name);
    files::FILES
        .iter()
        .find(|(name, _)| *name == wanted)
        .and_then(|(_, bytes)| String::from_utf8(bytes.to_vec()).ok())
}

/// `text` with every `schemaLocation`, relative to `directory`, made an `?xsd=` URL.
fn with_schema_urls(text: &str, endpoint: &str, directory: &str) -> String {
    replace_attribute(text, "schemaLocation", |location| {
        resolve(directory, location).map(|path| format!("{endpoint}?xsd={path}"))
    })
}

/// The path `location` names from `directory`, if it stays inside the tree.
fn resolve(directory: &str, location: &str) -> Option<String> {
    let mut segments: Vec<&str> = directory.split('/').filter(|s| !s.is_empty()).collect();
    for segment in location.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            segment => segments.push(segment),
        }
    }
    Some(segments.join("/"))
}

/// `text` with the value of every attribute `name="…"` replaced by what `replace` makes of it
/// (unchanged where it makes nothing). The files are SKAT's, whose attributes use double
/// quotes.
fn replace_attribute(text: &str, name: &str, replace: impl Fn(&str) -> Option<String>) -> String {
    let marker = format!(" {name}=\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(&marker) {
        let value_start = start + marker.len();
        let Some(length) = rest[value_start..].find('"') else {
            break;
        };
        let value = &rest[value_start..value_start + length];
        out.push_str(&rest[..value_start]);
        out.push_str(&replace(value).unwrap_or_else(|| value.to_owned()));
        rest = &rest[value_start + length..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::SERVICES;

    const ENDPOINT: &str = "https://gw.example:8443/EMCS_OIOLedsageDokumentOpret/x";

    #[test]
    fn every_schema_a_wsdl_names_is_served_and_names_only_served_schemas() {
        for service in &SERVICES {
            let endpoint = format!("https://gw.example{}", service.path);
            let wsdl = wsdl(service, &endpoint).unwrap();
            assert!(
                wsdl.contains(&format!("location=\"{endpoint}\"")),
                "{}",
                service.name
            );
            let mut pending: Vec<String> = urls(&wsdl, &endpoint);
            let mut seen = std::collections::HashSet::new();
            assert!(!pending.is_empty(), "{} includes schemas", service.name);
            while let Some(path) = pending.pop() {
                if !seen.insert(path.clone()) {
                    continue;
                }
                let schema = schema(service, &endpoint, &path)
                    .unwrap_or_else(|| panic!("{}: {path} is not served", service.name));
                roxmltree::Document::parse(&schema).unwrap();
                pending.extend(urls(&schema, &endpoint));
            }
        }
    }

    fn urls(text: &str, endpoint: &str) -> Vec<String> {
        let prefix = format!("schemaLocation=\"{endpoint}?xsd=");
        text.match_indices(&prefix)
            .map(|(at, _)| {
                let rest = &text[at + prefix.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    }

    #[test]
    fn nothing_outside_a_service_tree_is_served() {
        let service = &SERVICES[0];
        assert!(schema(service, ENDPOINT, "../OIOLedsageDokumentOpret/x.xsd").is_none());
        assert!(schema(service, ENDPOINT, &format!("{}.wsdl", service.name)).is_none());
        assert_eq!(resolve("a/b", "../../../x.xsd"), None);
        assert_eq!(resolve("a/b", "../c/x.xsd").as_deref(), Some("a/c/x.xsd"));
    }
}
