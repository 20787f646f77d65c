//! A simulated EMCS system, for the demo and the tests: it answers a request that passed the
//! gateway's checks the way SKAT's test system answers SKAT's sample inputs.
//!
//! - `OIOLedsageDokumentOpret` with a valid IE815: an ARC (the same for the same consignor and
//!   LocalReferenceNumber, as EMCS keeps an LRN) and the date of validation.
//! - A submitted message that EMCS's validation refuses: an IE917 (XmlNegativeAcknowledgement)
//!   as the service's `IE917BeskedTekst`. The simulator refuses what SKAT's
//!   `*-triggers-ie917-response.xml` inputs change: an element SKAT renamed to `…Invalid`,
//!   and a `TransportUnitCode` that is not one or two digits. It is not a schema validator.
//! - Other submissions: a clean `HovedOplysningerSvar`.
//! - The receiving services: advice 130 (no messages match), since it keeps none.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::answer::{Notice, answer};
use crate::message::IeMessage;
use crate::request::{EMCS_NS, HovedOplysninger, Request};
use crate::services::Kind;

/// EMCS's advice when no message matches a receiving service's search.
pub const NO_MESSAGES: Notice<'static> = Notice::Advice {
    code: 130,
    text: "Der blev ikke fundet nogen beskeder som matcher de indikeret søgeparametre",
};

const LEDSAGEDOKUMENT_NS: &str =
    "http://rep.oio.dk/skat.dk/emcs/class/ledsagedokument/xml/schemas/20080301/";
const IE917_NS: &str = "urn:publicid:-:EC:DGTAXUD:EMCS:PHASE4:IE917:V3.23";

/// The `_O` element EMCS answers `request` with at `at`.
pub fn respond(request: &Request<'_, '_>, header: &HovedOplysninger, at: OffsetDateTime) -> String {
    let service = request.service;
    if service.kind == Kind::Receive {
        return answer(service, header, at, &[NO_MESSAGES], None);
    }
    let message = request.ie_message().ok().flatten();
    let refusal = message.as_ref().and_then(validation_error);
    let output = match (refusal, &message) {
        (Some((element, reason)), Some(message)) => {
            let ie917 = ie917(message, &element, &reason, at);
            let mut text = format!(r#"<e:IE917BeskedTekst xmlns:e="{EMCS_NS}">"#);
            crate::escape_text(&ie917, &mut text);
            text.push_str("</e:IE917BeskedTekst>");
            Some(if has_output(service.structure) {
                format!("<s:Output>{text}</s:Output>")
            } else {
                text
            })
        }
        (None, Some(message)) if service.structure == "OIOLedsageDokumentOpret" => Some(format!(
            r#"<s:Output><s:LedsageDokument><e:LedsagedokumentARCIdentifikator xmlns:e="{EMCS_NS}">{arc}</e:LedsagedokumentARCIdentifikator><l:LedsagedokumentValideretDato xmlns:l="{LEDSAGEDOKUMENT_NS}">{date}</l:LedsagedokumentValideretDato></s:LedsageDokument></s:Output>"#,
            arc = arc(message, at),
            date = at.date(),
        )),
        _ => None,
    };
    answer(service, header, at, &[], output.as_deref())
}

/// The services whose `_O` wraps its result in an `Output` element.
fn has_output(structure: &str) -> bool {
    matches!(
        structure,
        "OIOLedsageDokumentOpret" | "OIOLedsageDokumentOpsplitningOpret"
    )
}

/// What EMCS's validation refuses in `message`: the element and why.
fn validation_error(message: &IeMessage<'_, '_>) -> Option<(String, String)> {
    message
        .root
        .descendants()
        .filter(|node| node.is_element())
        .find_map(|node| {
            let name = node.tag_name().name();
            if name.ends_with("Invalid") {
                return Some((
                    name.to_owned(),
                    format!("Element '{name}' is not expected."),
                ));
            }
            let value = node.text().unwrap_or_default().trim();
            let digits =
                (1..=2).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
            (name == "TransportUnitCode" && !digits).then(|| {
                (
                    name.to_owned(),
                    format!("The value '{value}' of element 'TransportUnitCode' is not valid."),
                )
            })
        })
}

/// An IE917 refusing `message` for `reason` at `element`.
fn ie917(message: &IeMessage<'_, '_>, element: &str, reason: &str, at: OffsetDateTime) -> String {
    let correlation = message
        .root
        .descendants()
        .find(|node| node.has_tag_name("MessageIdentifier"))
        .and_then(|node| node.text())
        .unwrap_or_default()
        .trim();
    let mut out = format!(
        r#"<ie:IE917 xmlns:ie="{IE917_NS}"><ie:Header><ie:MessageSender>NDEA.DK</ie:MessageSender><ie:MessageRecipient>NDEA.DK</ie:MessageRecipient><ie:DateOfPreparation>{date}</ie:DateOfPreparation><ie:TimeOfPreparation>{time}</ie:TimeOfPreparation><ie:MessageIdentifier>{id}</ie:MessageIdentifier><ie:CorrelationIdentifier>"#,
        date = at.date(),
        time = at.time(),
        id = fnv_base36(&format!("{correlation}{at}"), 20),
    );
    crate::escape_text(correlation, &mut out);
    out.push_str(&format!(
        "</ie:CorrelationIdentifier></ie:Header><ie:Body><ie:XmlNegativeAcknowledgement><ie:Attributes><ie:DateAndTimeOfIssuance>{}</ie:DateAndTimeOfIssuance></ie:Attributes><ie:XmlError><ie:ErrorReason>",
        at.format(&Rfc3339).unwrap_or_default()
    ));
    crate::escape_text(reason, &mut out);
    out.push_str("</ie:ErrorReason><ie:ErrorLocation>");
    crate::escape_text(&format!("{}/{element}", message.message_type), &mut out);
    out.push_str(
        "</ie:ErrorLocation></ie:XmlError></ie:XmlNegativeAcknowledgement></ie:Body></ie:IE917>",
    );
    out
}

/// An ARC in EMCS's shape (two digits of the year, `DK`, 16 letters or digits and a check
/// digit), fixed by the consignor and LocalReferenceNumber of `message`.
fn arc(message: &IeMessage<'_, '_>, at: OffsetDateTime) -> String {
    let field = |name: &str| {
        message
            .root
            .descendants()
            .find(|node| node.has_tag_name(name))
            .and_then(|node| node.text())
            .unwrap_or_default()
            .trim()
    };
    let body = fnv_base36(
        &format!(
            "{}/{}",
            field("TraderExciseNumber"),
            field("LocalReferenceNumber")
        ),
        16,
    );
    let check = body.bytes().map(u32::from).sum::<u32>() % 10;
    format!("{:02}DK{body}{check}", at.year() % 100)
}

/// `len` upper-case base-36 characters of a 64-bit FNV-1a hash of `text`, repeated as needed.
fn fnv_base36(text: &str, len: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = String::with_capacity(len);
    let mut state = hash;
    while out.len() < len {
        if state == 0 {
            state = hash.rotate_left(17) | 1;
        }
        out.push(char::from(DIGITS[(state % 36) as usize]));
        state /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{KONTEKST_NS, VIRKSOMHED_NS};

    const IE815: &str = include_str!("samples/ie815.xml");
    const IE815_TRIGGER: &str = include_str!("samples/ie815-triggers-ie917-response.xml");
    const IE818_TRIGGER: &str = include_str!("samples/ie818-triggers-ie917-response.xml");

    fn call(structure: &str, ie: &str, message: &str) -> String {
        let message = message.split_once("?>").map_or(message, |(_, rest)| rest);
        let text = format!(
            r#"<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><s:{structure}_I xmlns:s="{ns}" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}" xmlns:k="{KONTEKST_NS}"><k:HovedOplysninger><k:TransaktionIdentifikator>T-1</k:TransaktionIdentifikator><k:TransaktionTid>2026-12-03T12:00:00Z</k:TransaktionTid></k:HovedOplysninger><s:{ie}Struktur>{message}</s:{ie}Struktur></s:{structure}_I></soap:Body>"#,
            ns = crate::NAMESPACE,
        );
        let document = roxmltree::Document::parse(&text).unwrap();
        let request = Request::of_body(document.root_element(), None).unwrap();
        let header = request.hoved_oplysninger().unwrap();
        let at = time::macros::datetime!(2026-12-03 12:00:01 UTC);
        respond(&request, &header, at)
    }

    fn text_of<'a>(document: &'a roxmltree::Document<'_>, name: &str) -> Option<&'a str> {
        document
            .descendants()
            .find(|node| node.tag_name().name() == name)
            .and_then(|node| node.text())
    }

    #[test]
    fn a_valid_ie815_gets_an_arc_fixed_by_its_lrn() {
        let answer = call("OIOLedsageDokumentOpret", "IE815", IE815);
        let answer = roxmltree::Document::parse(&answer).unwrap();
        let arc = text_of(&answer, "LedsagedokumentARCIdentifikator")
            .unwrap()
            .to_owned();
        assert_eq!(arc.len(), 21, "{arc}");
        assert!(arc.starts_with("26DK"), "{arc}");
        assert!(
            arc.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(
            text_of(&answer, "LedsagedokumentValideretDato"),
            Some("2026-12-03")
        );
        assert_eq!(text_of(&answer, "TransaktionIdentifikator"), Some("T-1"));
        assert!(text_of(&answer, "FejlIdentifikator").is_none());

        let again = call("OIOLedsageDokumentOpret", "IE815", IE815);
        let again = roxmltree::Document::parse(&again).unwrap();
        assert_eq!(
            text_of(&again, "LedsagedokumentARCIdentifikator"),
            Some(arc.as_str())
        );
        let other_lrn = IE815.replace(">1964466<", ">1964467<");
        let other = call("OIOLedsageDokumentOpret", "IE815", &other_lrn);
        let other = roxmltree::Document::parse(&other).unwrap();
        assert_ne!(
            text_of(&other, "LedsagedokumentARCIdentifikator"),
            Some(arc.as_str())
        );
    }

    #[test]
    fn skats_trigger_inputs_get_an_ie917() {
        for (structure, ie, message, element) in [
            (
                "OIOLedsageDokumentOpret",
                "IE815",
                IE815_TRIGGER,
                "TransportUnitCode",
            ),
            (
                "OIOKvitteringOpret",
                "IE818",
                IE818_TRIGGER,
                "DestinationOfficeInvalid",
            ),
        ] {
            let answer = call(structure, ie, message);
            let answer = roxmltree::Document::parse(&answer).unwrap();
            assert!(text_of(&answer, "LedsagedokumentARCIdentifikator").is_none());
            let ie917 = text_of(&answer, "IE917BeskedTekst").unwrap();
            let ie917 = roxmltree::Document::parse(ie917).unwrap();
            assert!(ie917.root_element().has_tag_name((IE917_NS, "IE917")));
            let location = text_of(&ie917, "ErrorLocation").unwrap();
            assert_eq!(location, format!("{ie}/{element}"));
            let correlation = text_of(&ie917, "CorrelationIdentifier").unwrap();
            assert!(
                message.contains(&format!(">{correlation}<")),
                "{correlation}"
            );
        }
    }

    #[test]
    fn receiving_services_find_no_messages() {
        let answer = call("OIOKvitteringSamlingHent", "IE818", "");
        let answer = roxmltree::Document::parse(&answer).unwrap();
        assert_eq!(text_of(&answer, "AdvisIdentifikator"), Some("130"));
        assert!(
            text_of(&answer, "AdvisTekst")
                .unwrap()
                .starts_with("Der blev ikke fundet")
        );
        assert!(text_of(&answer, "FejlIdentifikator").is_none());
    }
}
