//! What every request carries besides its IE document, read from the service's `_I` element:
//! `HovedOplysninger`, the caller's `TransaktionIdentifikator` (1 to 100 characters, never
//! reused) and `TransaktionTid` (an `xs:dateTime`, in UTC or with an offset); and
//! `VirksomhedIdentifikationStruktur`, the company's SE number and the excise number it acts
//! for.

use roxmltree::Node;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::answer::GatewayError;
use crate::services::Service;

/// The namespace of `HovedOplysninger` and its fields.
pub const KONTEKST_NS: &str = "http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/";

/// The namespace of `VirksomhedSENummerIdentifikator`.
pub const VIRKSOMHED_NS: &str =
    "http://rep.oio.dk/skat.dk/motor/class/virksomhed/xml/schemas/20080401/";
/// The namespace of `AfgiftOperatoerPunktAfgiftIdentifikator`.
pub const EMCS_NS: &str = "urn:oio:skat:emcs:1.0.1";

const MAX_TRANSACTION_ID_CHARS: usize = 100;

/// Who a request is made for: the reporting company's SE number and the excise number of
/// the operator it acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trader {
    pub se_number: String,
    /// Two capital letters and eleven letters or digits (`ExciseNumberType` of the EMCS
    /// schemas), e.g. `DK31175143300`.
    pub excise_number: String,
}

/// Why a request's Body was not accepted. The texts go into the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the message has no SOAP Body")]
    NoBody,
    #[error("the Body must hold exactly one element")]
    NotOneElement,
    #[error("the Body element {0} is not the request of an EMCS service")]
    UnknownService(String),
    #[error("the request is for {found}, but was sent to the endpoint of {endpoint}")]
    WrongEndpoint {
        found: &'static str,
        endpoint: &'static str,
    },
    #[error("the request has no HovedOplysninger")]
    NoHovedOplysninger,
    #[error("HovedOplysninger has no {0}")]
    Missing(&'static str),
    #[error("TransaktionIdentifikator must be 1 to 100 characters")]
    TransactionIdLength,
    #[error("TransaktionTid {0:?} is not an xs:dateTime with a time zone (Z or an offset)")]
    TransactionTime(String),
}

/// `HovedOplysninger` as the caller sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HovedOplysninger {
    pub transaction_id: String,
    pub transaction_time: OffsetDateTime,
}

/// A request's `_I` element, routed and its `HovedOplysninger` read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, 'input> {
    pub service: &'static Service,
    pub element: Node<'a, 'input>,
}

impl<'a, 'input> Request<'a, 'input> {
    /// The request in `body` (the SOAP Body element), sent to the endpoint of `endpoint`
    /// when the URL named one.
    pub fn of_body(
        body: Node<'a, 'input>,
        endpoint: Option<&'static Service>,
    ) -> Result<Self, RequestError> {
        let mut elements = body.children().filter(Node::is_element);
        let (Some(element), None) = (elements.next(), elements.next()) else {
            return Err(RequestError::NotOneElement);
        };
        let name = element.tag_name();
        let service = (name.namespace() == Some(crate::NAMESPACE))
            .then(|| Service::by_request_element(name.name()))
            .flatten()
            .ok_or_else(|| RequestError::UnknownService(name.name().to_owned()))?;
        if let Some(endpoint) = endpoint.filter(|endpoint| endpoint != &service) {
            return Err(RequestError::WrongEndpoint {
                found: service.name,
                endpoint: endpoint.name,
            });
        }
        Ok(Self { service, element })
    }

    /// The request in the SOAP 1.1 Body of `envelope`, as [`Request::of_body`] reads it.
    pub fn in_envelope(
        envelope: &'a roxmltree::Document<'input>,
        endpoint: Option<&'static Service>,
    ) -> Result<Self, RequestError> {
        let body = envelope
            .root_element()
            .children()
            .find(|node| node.has_tag_name((mftgw_wssec::wsse::SOAP11_NS, "Body")))
            .ok_or(RequestError::NoBody)?;
        Self::of_body(body, endpoint)
    }

    /// The request's `HovedOplysninger`.
    pub fn hoved_oplysninger(&self) -> Result<HovedOplysninger, RequestError> {
        let header = self
            .element
            .children()
            .find(|child| child.has_tag_name((KONTEKST_NS, "HovedOplysninger")))
            .ok_or(RequestError::NoHovedOplysninger)?;
        let field = |name: &'static str| {
            header
                .children()
                .find(|child| child.has_tag_name((KONTEKST_NS, name)))
                .map(|child| child.text().unwrap_or_default().trim())
                .ok_or(RequestError::Missing(name))
        };
        let transaction_id = field("TransaktionIdentifikator")?;
        if !(1..=MAX_TRANSACTION_ID_CHARS).contains(&transaction_id.chars().count()) {
            return Err(RequestError::TransactionIdLength);
        }
        let time = field("TransaktionTid")?;
        let transaction_time = OffsetDateTime::parse(time, &Rfc3339)
            .map_err(|_| RequestError::TransactionTime(time.to_owned()))?;
        Ok(HovedOplysninger {
            transaction_id: transaction_id.to_owned(),
            transaction_time,
        })
    }
}

impl Request<'_, '_> {
    /// The request's `VirksomhedIdentifikationStruktur`, or the error code seed 004 gives for
    /// what is missing or malformed (100, 101, 102).
    pub fn trader(&self) -> Result<Trader, GatewayError> {
        let structure = child(
            self.element,
            crate::NAMESPACE,
            "VirksomhedIdentifikationStruktur",
        );
        let se_number = structure
            .and_then(|structure| child(structure, crate::NAMESPACE, "Indberetter"))
            .and_then(|reporter| child(reporter, VIRKSOMHED_NS, "VirksomhedSENummerIdentifikator"))
            .and_then(text)
            .ok_or(GatewayError::SeNumberMissing)?;
        let excise_number = structure
            .and_then(|structure| {
                child(
                    structure,
                    EMCS_NS,
                    "AfgiftOperatoerPunktAfgiftIdentifikator",
                )
            })
            .and_then(text)
            .ok_or(GatewayError::ExciseNumberMissing)?;
        if !is_excise_number(excise_number) {
            return Err(GatewayError::ExciseNumberMalformed);
        }
        Ok(Trader {
            se_number: se_number.to_owned(),
            excise_number: excise_number.to_owned(),
        })
    }
}

fn child<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &str,
    name: &str,
) -> Option<Node<'a, 'input>> {
    node.children()
        .find(|child| child.has_tag_name((namespace, name)))
}

/// The element's text, trimmed, if there is any.
fn text<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.text().map(str::trim).filter(|text| !text.is_empty())
}

/// `[A-Z]{2}[a-zA-Z0-9]{11}`.
fn is_excise_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 13
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::SERVICES;

    fn body(content: &str) -> String {
        format!(
            r#"<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">{content}</soap:Body>"#
        )
    }

    fn request(structure: &str, header: &str) -> String {
        body(&format!(
            r#"<s:{structure}_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1" xmlns:k="{KONTEKST_NS}"><k:HovedOplysninger>{header}</k:HovedOplysninger></s:{structure}_I>"#
        ))
    }

    fn read(text: &str) -> Result<HovedOplysninger, RequestError> {
        let document = roxmltree::Document::parse(text).unwrap();
        Request::of_body(document.root_element(), None)?.hoved_oplysninger()
    }

    const ID: &str = "<k:TransaktionIdentifikator>T-1</k:TransaktionIdentifikator>";

    #[test]
    fn the_transaction_time_is_taken_in_utc_or_with_an_offset() {
        let utc = read(&request(
            "OIOLedsageDokumentOpret",
            &format!("{ID}<k:TransaktionTid>2026-12-03T12:00:00Z</k:TransaktionTid>"),
        ))
        .unwrap();
        let offset = read(&request(
            "OIOLedsageDokumentOpret",
            &format!("{ID}<k:TransaktionTid>2026-12-03T13:00:00.250+01:00</k:TransaktionTid>"),
        ))
        .unwrap();
        assert_eq!(utc.transaction_id, "T-1");
        assert_eq!(
            offset.transaction_time - utc.transaction_time,
            time::Duration::milliseconds(250)
        );
        assert_eq!(
            read(&request(
                "OIOLedsageDokumentOpret",
                &format!("{ID}<k:TransaktionTid>2026-12-03T12:00:00</k:TransaktionTid>")
            )),
            Err(RequestError::TransactionTime("2026-12-03T12:00:00".into()))
        );
    }

    #[test]
    fn hoved_oplysninger_must_name_the_transaction() {
        let time = "<k:TransaktionTid>2026-12-03T12:00:00Z</k:TransaktionTid>";
        assert_eq!(
            read(&request("OIOKvitteringOpret", time)),
            Err(RequestError::Missing("TransaktionIdentifikator"))
        );
        assert_eq!(
            read(&request("OIOKvitteringOpret", ID)),
            Err(RequestError::Missing("TransaktionTid"))
        );
        let long = format!(
            "<k:TransaktionIdentifikator>{}</k:TransaktionIdentifikator>{time}",
            "å".repeat(101)
        );
        assert_eq!(
            read(&request("OIOKvitteringOpret", &long)),
            Err(RequestError::TransactionIdLength)
        );
        let hundred = format!(
            "<k:TransaktionIdentifikator>{}</k:TransaktionIdentifikator>{time}",
            "å".repeat(100)
        );
        assert!(read(&request("OIOKvitteringOpret", &hundred)).is_ok());
        let none = body(r#"<s:OIOKvitteringOpret_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1"/>"#);
        assert_eq!(read(&none), Err(RequestError::NoHovedOplysninger));
    }

    #[test]
    fn the_body_element_names_the_service_and_must_match_the_endpoint() {
        let text = request("OIOPåmindelseSamlingHent", ID);
        let document = roxmltree::Document::parse(&text).unwrap();
        let routed = Request::of_body(document.root_element(), None).unwrap();
        assert_eq!(routed.service.name, "OIOPaamindelseSamlingHent");
        let envelope = format!(
            r#"<soap:Envelope xmlns:soap="{}"><soap:Header/>{text}</soap:Envelope>"#,
            mftgw_wssec::wsse::SOAP11_NS
        );
        let envelope = roxmltree::Document::parse(&envelope).unwrap();
        let in_envelope = Request::in_envelope(&envelope, None).unwrap();
        assert_eq!(in_envelope.service.name, "OIOPaamindelseSamlingHent");
        assert_eq!(
            Request::in_envelope(&document, None).unwrap_err(),
            RequestError::NoBody,
            "the Body is the Envelope's child, not the document element"
        );
        let other = &SERVICES[0];
        assert_eq!(
            Request::of_body(document.root_element(), Some(other)).unwrap_err(),
            RequestError::WrongEndpoint {
                found: "OIOPaamindelseSamlingHent",
                endpoint: other.name
            }
        );
        for (content, refusal) in [
            ("", RequestError::NotOneElement),
            ("<a/><b/>", RequestError::NotOneElement),
            (
                r#"<s:Nothing_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1"/>"#,
                RequestError::UnknownService("Nothing_I".into()),
            ),
            (
                "<OIOKvitteringOpret_I/>",
                RequestError::UnknownService("OIOKvitteringOpret_I".into()),
            ),
        ] {
            let text = body(content);
            let document = roxmltree::Document::parse(&text).unwrap();
            assert_eq!(
                Request::of_body(document.root_element(), None).unwrap_err(),
                refusal,
                "{content}"
            );
        }
    }

    #[test]
    fn the_trader_is_read_or_the_seeds_code_says_what_is_wrong() {
        let with = |structure: &str| {
            body(&format!(
                r#"<s:OIOLedsageDokumentOpret_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}">{structure}</s:OIOLedsageDokumentOpret_I>"#
            ))
        };
        let trader = |text: &str| {
            let document = roxmltree::Document::parse(text).unwrap();
            Request::of_body(document.root_element(), None)
                .unwrap()
                .trader()
        };
        let structure = |se: &str, excise: &str| {
            format!(
                "<s:VirksomhedIdentifikationStruktur><s:Indberetter>{se}</s:Indberetter>{excise}</s:VirksomhedIdentifikationStruktur>"
            )
        };
        let se = "<v:VirksomhedSENummerIdentifikator>19552101</v:VirksomhedSENummerIdentifikator>";
        let excise = |number: &str| {
            format!(
                "<e:AfgiftOperatoerPunktAfgiftIdentifikator>{number}</e:AfgiftOperatoerPunktAfgiftIdentifikator>"
            )
        };
        assert_eq!(
            trader(&with(&structure(se, &excise(" DK31175143300 ")))),
            Ok(Trader {
                se_number: "19552101".into(),
                excise_number: "DK31175143300".into()
            })
        );
        assert_eq!(trader(&with("")), Err(GatewayError::SeNumberMissing));
        assert_eq!(
            trader(&with(&structure(
                "<v:VirksomhedSENummerIdentifikator/>",
                &excise("DK31175143300")
            ))),
            Err(GatewayError::SeNumberMissing)
        );
        assert_eq!(
            trader(&with(&structure(se, ""))),
            Err(GatewayError::ExciseNumberMissing)
        );
        for malformed in [
            "DK3117514330",
            "dk31175143300",
            "DK31175143300X",
            "DK3117514330-",
        ] {
            assert_eq!(
                trader(&with(&structure(se, &excise(malformed)))),
                Err(GatewayError::ExciseNumberMalformed),
                "{malformed}"
            );
        }
    }
}
