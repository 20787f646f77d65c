//! The service table says what SKAT's WSDLs say (`crates/emcs/wsdl/<Service>/<Service>.wsdl`,
//! copied with their schemas from SKAT's `emcs-b2b-ws/wsdl/`):
//! one service per WSDL, and for each its endpoint path, SOAPAction, operation and `_I`/`_O`
//! elements. Routing finds every service by its path and by its request element.

use mftgw_emcs::NAMESPACE;
use mftgw_emcs::services::{SERVICES, Service};

const WSDLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl");
const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const WSDL_SOAP_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";

/// What one WSDL declares, read with a plain XML parser.
#[derive(Debug, PartialEq, Eq)]
struct Declared {
    path: String,
    soap_action: String,
    operation: String,
    elements: Vec<String>,
}

fn declared(name: &str) -> Declared {
    let text = std::fs::read_to_string(format!("{WSDLS}/{name}/{name}.wsdl")).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let find = |namespace: &str, element: &str| {
        document
            .descendants()
            .find(|node| node.has_tag_name((namespace, element)))
            .unwrap_or_else(|| panic!("{name}: no {element}"))
    };
    let location = find(WSDL_SOAP_NS, "address").attribute("location").unwrap();
    let mut elements: Vec<String> = document
        .descendants()
        .filter(|node| node.has_tag_name((WSDL_NS, "part")))
        .map(|part| {
            let element = part.attribute("element").unwrap();
            let (prefix, local) = element.split_once(':').unwrap();
            assert_eq!(
                part.lookup_namespace_uri(Some(prefix)),
                Some(NAMESPACE),
                "{name}"
            );
            local.to_owned()
        })
        .collect();
    elements.sort();
    Declared {
        path: location
            .strip_prefix("http://localhost")
            .unwrap()
            .to_owned(),
        soap_action: find(WSDL_SOAP_NS, "operation")
            .attribute("soapAction")
            .unwrap()
            .to_owned(),
        operation: find(WSDL_NS, "operation")
            .attribute("name")
            .unwrap()
            .to_owned(),
        elements,
    }
}

#[test]
fn the_table_is_the_wsdls() {
    let mut wsdls: Vec<String> = std::fs::read_dir(WSDLS)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    wsdls.sort();
    let names: Vec<&str> = SERVICES.iter().map(|service| service.name).collect();
    assert_eq!(names, wsdls, "one service per WSDL, in order");
    for service in &SERVICES {
        assert_eq!(
            declared(service.name),
            Declared {
                path: service.path.to_owned(),
                soap_action: service.soap_action.to_owned(),
                operation: service.operation(),
                elements: vec![service.request_element(), service.response_element()],
            },
            "{}",
            service.name
        );
    }
}

#[test]
fn every_service_is_found_by_its_path_and_by_its_request_element() {
    for service in &SERVICES {
        assert_eq!(Service::by_path(service.path), Some(service));
        assert_eq!(
            Service::by_path(&format!("{}/", service.path)),
            Some(service)
        );
        assert_eq!(
            Service::by_request_element(&service.request_element()),
            Some(service)
        );
        assert_eq!(
            Service::by_request_element(&service.response_element()),
            None
        );
    }
    assert_eq!(Service::by_path("/EMCS_OIOLedsageDokumentOpret"), None);
    let reminder = Service::by_request_element("OIOPåmindelseSamlingHent_I").unwrap();
    assert_eq!(reminder.name, "OIOPaamindelseSamlingHent");
}

#[test]
fn submitting_services_create_or_request_and_receiving_services_fetch() {
    for service in &SERVICES {
        let submits = service.name.ends_with("Opret") || service.name.ends_with("Anmod");
        assert_eq!(
            service.kind == mftgw_emcs::services::Kind::Submit,
            submits,
            "{}",
            service.name
        );
    }
}
