//! A simulated EMCS system, for the demo and the tests: it answers a request that passed the
//! gateway's checks the way SKAT's test system answers SKAT's sample inputs, and keeps what
//! EMCS forwards to the other party of a movement until that party collects it.
//!
//! - `OIOLedsageDokumentOpret` with a valid IE815: an ARC (the same for the same consignor and
//!   LocalReferenceNumber, as EMCS keeps an LRN) and the date of validation. The movement's
//!   consignor and consignee are remembered by ARC.
//! - A submitted message that EMCS's validation refuses: an IE917 (XmlNegativeAcknowledgement)
//!   as the service's `IE917BeskedTekst`. The simulator refuses what SKAT's
//!   `*-triggers-ie917-response.xml` inputs change: an element SKAT renamed to `…Invalid`,
//!   and a `TransportUnitCode` that is not one or two digits. It is not a schema validator.
//! - Other submissions: a clean `HovedOplysningerSvar`. An IE818 (receipt) or IE819 (alert
//!   or rejection) of a known movement is kept for its consignor, an IE810 (cancellation) or
//!   IE813 (change of destination) for its consignee ([`FORWARDED`]).
//! - The receiving services: the messages kept for the caller's excise number, each once;
//!   advice 130 (no messages match) when there are none. The simulator issues no IE801 and
//!   keeps its state in memory only.

use std::collections::HashMap;

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

/// What EMCS forwards: the message type, whether it goes to the movement's consignor (else
/// its consignee), and the receiving service, collection and element it is collected as.
pub const FORWARDED: [Forwarded; 4] = [
    Forwarded {
        message_type: "IE818",
        to_consignor: true,
        service: "OIOKvitteringSamlingHent",
        collection: "KvitteringSamling",
    },
    Forwarded {
        message_type: "IE819",
        to_consignor: true,
        service: "OIOLedsageDokumentNotifikationSamlingHent",
        collection: "LedsageDokumentNotifikationSamling",
    },
    Forwarded {
        message_type: "IE810",
        to_consignor: false,
        service: "OIOLedsageDokumentAnnulleringSamlingHent",
        collection: "LedsageDokumentAnnulleringSamling",
    },
    Forwarded {
        message_type: "IE813",
        to_consignor: false,
        service: "OIOLedsageDokumentDestinationSkiftSamlingHent",
        collection: "LedsageDokumentDestinationSkiftSamling",
    },
];

/// One kind of message EMCS forwards to the other party of a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    pub message_type: &'static str,
    pub to_consignor: bool,
    pub service: &'static str,
    pub collection: &'static str,
}

const LEDSAGEDOKUMENT_NS: &str =
    "http://rep.oio.dk/skat.dk/emcs/class/ledsagedokument/xml/schemas/20080301/";
const IE917_NS: &str = "urn:publicid:-:EC:DGTAXUD:EMCS:PHASE4:IE917:V3.23";

/// The parties of a movement, by excise number.
#[derive(Debug, Clone)]
struct Movement {
    consignor: String,
    consignee: String,
}

/// The simulated EMCS: its movements and the messages waiting to be collected.
#[derive(Debug, Default)]
pub struct Emcs {
    movements: HashMap<String, Movement>,
    /// Messages (self-contained XML) by the excise number and service they wait for.
    waiting: HashMap<(String, &'static str), Vec<String>>,
}

impl Emcs {
    /// The `_O` element EMCS answers `request` with at `at`, made for the operator of excise
    /// number `caller`.
    pub fn respond(
        &mut self,
        request: &Request<'_, '_>,
        header: &HovedOplysninger,
        caller: &str,
        at: OffsetDateTime,
    ) -> String {
        let service = request.service;
        if service.kind == Kind::Receive {
            return self.collect(request, header, caller, at);
        }
        let message = request.ie_message().ok().flatten();
        let refusal = message.as_ref().and_then(validation_error);
        let output = match (refusal, &message) {
            (Some((element, reason)), Some(message)) => {
                let ie917 = ie917(message, &element, &reason, at);
                let text = besked_tekst("IE917", &ie917);
                Some(if has_output(service.structure) {
                    format!("<s:Output>{text}</s:Output>")
                } else {
                    text
                })
            }
            (None, Some(message)) if service.structure == "OIOLedsageDokumentOpret" => {
                let arc = arc(message, at);
                self.movements.insert(
                    arc.clone(),
                    Movement {
                        consignor: field(message, "ConsignorTrader", "TraderExciseNumber"),
                        consignee: field(message, "ConsigneeTrader", "Traderid"),
                    },
                );
                Some(format!(
                    r#"<s:Output><s:LedsageDokument><e:LedsagedokumentARCIdentifikator xmlns:e="{EMCS_NS}">{arc}</e:LedsagedokumentARCIdentifikator><l:LedsagedokumentValideretDato xmlns:l="{LEDSAGEDOKUMENT_NS}">{date}</l:LedsagedokumentValideretDato></s:LedsageDokument></s:Output>"#,
                    date = at.date(),
                ))
            }
            (None, Some(message)) => {
                self.forward(message);
                None
            }
            _ => None,
        };
        answer(service, header, at, &[], output.as_deref())
    }

    /// Keeps `message` for the other party of its movement, if EMCS forwards its type and
    /// knows the movement.
    fn forward(&mut self, message: &IeMessage<'_, '_>) {
        let Some(forwarded) = FORWARDED
            .iter()
            .find(|forwarded| forwarded.message_type == message.message_type)
        else {
            return;
        };
        let arc = field(message, "ExciseMovement", "AdministrativeReferenceCode");
        let Some(movement) = self.movements.get(&arc) else {
            return;
        };
        let to = if forwarded.to_consignor {
            &movement.consignor
        } else {
            &movement.consignee
        };
        self.waiting
            .entry((to.clone(), forwarded.service))
            .or_default()
            .push(mftgw_wssec::c14n::exclusive(message.root));
    }

    /// A receiving service's answer: what waits for `caller` there, now collected.
    fn collect(
        &mut self,
        request: &Request<'_, '_>,
        header: &HovedOplysninger,
        caller: &str,
        at: OffsetDateTime,
    ) -> String {
        let service = request.service;
        let waiting = self
            .waiting
            .remove(&(caller.to_owned(), service.name))
            .unwrap_or_default();
        let Some(forwarded) = FORWARDED.iter().find(|f| f.service == service.name) else {
            return answer(service, header, at, &[NO_MESSAGES], None);
        };
        if waiting.is_empty() {
            return answer(service, header, at, &[NO_MESSAGES], None);
        }
        let mut output = format!("<s:{}>", forwarded.collection);
        for message in &waiting {
            output.push_str(&besked_tekst(forwarded.message_type, message));
        }
        output.push_str(&format!("</s:{}>", forwarded.collection));
        answer(service, header, at, &[], Some(&output))
    }
}

/// `message` as the text of an `<ie>BeskedTekst` element.
fn besked_tekst(message_type: &str, message: &str) -> String {
    let mut text = format!(r#"<e:{message_type}BeskedTekst xmlns:e="{EMCS_NS}">"#);
    crate::escape_text(message, &mut text);
    text.push_str(&format!("</e:{message_type}BeskedTekst>"));
    text
}

/// The text of `message`'s `name` inside its `parent`, trimmed (empty if it has none).
fn field(message: &IeMessage<'_, '_>, parent: &str, name: &str) -> String {
    message
        .root
        .descendants()
        .find(|node| node.tag_name().name() == parent)
        .and_then(|parent| {
            parent
                .children()
                .find(|child| child.tag_name().name() == name)
        })
        .and_then(|node| node.text())
        .unwrap_or_default()
        .trim()
        .to_owned()
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
    const IE818: &str = include_str!("samples/ie818.xml");
    const CONSIGNOR: &str = "DK82065873300";
    const CONSIGNEE: &str = "DK99025875300";

    #[test]
    fn a_receipt_waits_for_the_consignor_until_collected_once() {
        let mut emcs = Emcs::default();
        let nothing = |answer: &str| answer.contains("<k:AdvisIdentifikator>130<");
        let collect =
            |emcs: &mut Emcs, caller| call_in(emcs, "OIOKvitteringSamlingHent", "", "", caller);
        assert!(nothing(&collect(&mut emcs, CONSIGNOR)));
        let answer = call_in(
            &mut emcs,
            "OIOLedsageDokumentOpret",
            "IE815",
            IE815,
            CONSIGNOR,
        );
        let answer = roxmltree::Document::parse(&answer).unwrap();
        let arc = text_of(&answer, "LedsagedokumentARCIdentifikator")
            .unwrap()
            .to_owned();
        let receipt = IE818
            .replace("18DK6T3AQYMQQWRQWSK05", &arc)
            .replace("DK30808460300", CONSIGNEE);
        call_in(
            &mut emcs,
            "OIOKvitteringOpret",
            "IE818",
            &receipt,
            CONSIGNEE,
        );
        // Not for the consignee, nor on another service.
        assert!(nothing(&collect(&mut emcs, CONSIGNEE)));
        let notifications = call_in(
            &mut emcs,
            "OIOLedsageDokumentNotifikationSamlingHent",
            "",
            "",
            CONSIGNOR,
        );
        assert!(nothing(&notifications));

        let answer = collect(&mut emcs, CONSIGNOR);
        let answer = roxmltree::Document::parse(&answer).unwrap();
        assert!(text_of(&answer, "AdvisIdentifikator").is_none());
        let kept = answer
            .descendants()
            .find(|node| node.has_tag_name((crate::NAMESPACE, "KvitteringSamling")))
            .and_then(|collection| collection.first_element_child())
            .unwrap();
        assert!(kept.has_tag_name((EMCS_NS, "IE818BeskedTekst")));
        let ie818 = roxmltree::Document::parse(kept.text().unwrap()).unwrap();
        assert_eq!(ie818.root_element().tag_name().name(), "IE818");
        assert_eq!(
            text_of(&ie818, "AdministrativeReferenceCode"),
            Some(arc.as_str())
        );
        assert!(nothing(&collect(&mut emcs, CONSIGNOR)), "collected once");
    }

    fn call(structure: &str, ie: &str, message: &str) -> String {
        call_in(
            &mut Emcs::default(),
            structure,
            ie,
            message,
            "DK82065873300",
        )
    }

    /// A call of `structure` by the operator `caller` to `emcs`, with `message` in
    /// `<ie>Struktur` (none if `ie` is empty).
    fn call_in(emcs: &mut Emcs, structure: &str, ie: &str, message: &str, caller: &str) -> String {
        let message = message.split_once("?>").map_or(message, |(_, rest)| rest);
        let message = if ie.is_empty() {
            String::new()
        } else {
            format!("<s:{ie}Struktur>{message}</s:{ie}Struktur>")
        };
        let text = format!(
            r#"<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><s:{structure}_I xmlns:s="{ns}" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}" xmlns:k="{KONTEKST_NS}"><k:HovedOplysninger><k:TransaktionIdentifikator>T-1</k:TransaktionIdentifikator><k:TransaktionTid>2026-12-03T12:00:00Z</k:TransaktionTid></k:HovedOplysninger>{message}</s:{structure}_I></soap:Body>"#,
            ns = crate::NAMESPACE,
        );
        let document = roxmltree::Document::parse(&text).unwrap();
        let request = Request::of_body(document.root_element(), None).unwrap();
        let header = request.hoved_oplysninger().unwrap();
        let at = time::macros::datetime!(2026-12-03 12:00:01 UTC);
        emcs.respond(&request, &header, caller, at)
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
