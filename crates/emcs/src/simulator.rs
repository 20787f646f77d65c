//! A simulated EMCS system, for the demo and the tests: it answers a request that passed the
//! gateway's checks the way SKAT's test system answers SKAT's sample inputs, and keeps what
//! EMCS forwards to the other party of a movement until that party collects it.
//!
//! - `OIOLedsageDokumentOpret` with a valid IE815: an ARC (the same for the same consignor and
//!   LocalReferenceNumber, as EMCS keeps an LRN) and the date of validation. The movement's
//!   consignor and consignee are remembered by ARC.
//! - A submitted message whose Body breaks its schema ([`crate::schema`]), as SKAT's
//!   `*-triggers-ie917-response.xml` inputs do: an IE917 (XmlNegativeAcknowledgement, in the
//!   message's schema version) as the service's `IE917BeskedTekst`, one `XmlError` per
//!   violation with its line and column in the message. A message EMCS cannot correlate an
//!   IE917 to (its Header or root breaks the schema): error 400, as the gateway answers it.
//! - Other submissions: a clean `HovedOplysningerSvar`. An IE818 (receipt) or IE819 (alert
//!   or rejection) of a known movement is kept for its consignor, an IE810 (cancellation) or
//!   IE813 (change of destination) for its consignee ([`FORWARDED`]).
//! - The receiving services: the messages kept for the caller's excise number, each once;
//!   advice 130 (no messages match) when there are none. The simulator issues no IE801 and
//!   keeps its state in memory only.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::answer::{GatewayError, Notice, answer};
use crate::message::{IE_NAMESPACE_PREFIX, IeMessage};
use crate::request::{EMCS_NS, HovedOplysninger, Request};
use crate::schema::Violation;
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
        let Some(message) = request.ie_message().ok().flatten() else {
            return answer(service, header, at, &[], None);
        };
        if let Err(refusal) = message.validate() {
            let Some(violations) = refusal.body_violations(message.message_type) else {
                let refused = GatewayError::InvalidFormat;
                let notice = Notice::Error {
                    code: refused.code(),
                    text: refused.text(),
                };
                return answer(service, header, at, &[notice], None);
            };
            let text = besked_tekst("IE917", &ie917(&message, violations, at));
            let output = if has_output(service.structure) {
                format!("<s:Output>{text}</s:Output>")
            } else {
                text
            };
            return answer(service, header, at, &[], Some(&output));
        }
        let output = if service.structure == "OIOLedsageDokumentOpret" {
            let arc = arc(&message, at);
            self.movements.insert(
                arc.clone(),
                Movement {
                    consignor: field(&message, "ConsignorTrader", "TraderExciseNumber"),
                    consignee: field(&message, "ConsigneeTrader", "Traderid"),
                },
            );
            Some(format!(
                r#"<s:Output><s:LedsageDokument><e:LedsagedokumentARCIdentifikator xmlns:e="{EMCS_NS}">{arc}</e:LedsagedokumentARCIdentifikator><l:LedsagedokumentValideretDato xmlns:l="{LEDSAGEDOKUMENT_NS}">{date}</l:LedsagedokumentValideretDato></s:LedsageDokument></s:Output>"#,
                date = at.date(),
            ))
        } else {
            self.forward(&message);
            None
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

/// An IE917 (in `message`'s schema version) refusing `message` for `violations` of its Body.
fn ie917(message: &IeMessage<'_, '_>, violations: &[Violation], at: OffsetDateTime) -> String {
    let version = message.version.as_str();
    let correlation = message
        .root
        .descendants()
        .find(|node| node.has_tag_name("MessageIdentifier"))
        .and_then(|node| node.text())
        .unwrap_or_default()
        .trim();
    let mut out = format!(
        r#"<ie:IE917 xmlns:ie="{IE_NAMESPACE_PREFIX}IE917:V{version}" xmlns:tms="{IE_NAMESPACE_PREFIX}TMS:V{version}"><ie:Header><tms:MessageSender>NDEA.DK</tms:MessageSender><tms:MessageRecipient>NDEA.DK</tms:MessageRecipient><tms:DateOfPreparation>{date}</tms:DateOfPreparation><tms:TimeOfPreparation>{hour:02}:{minute:02}:{second:02}</tms:TimeOfPreparation><tms:MessageIdentifier>{id}</tms:MessageIdentifier><tms:CorrelationIdentifier>"#,
        date = at.date(),
        hour = at.hour(),
        minute = at.minute(),
        second = at.second(),
        id = fnv_base36(&format!("{correlation}{at}"), 20),
    );
    crate::escape_text(correlation, &mut out);
    out.push_str(
        "</tms:CorrelationIdentifier></ie:Header><ie:Body><ie:XmlNegativeAcknowledgement>",
    );
    for violation in violations {
        let (line, column) = position(message, &violation.path);
        out.push_str(&format!(
            "<ie:XmlError><ie:ErrorLineNumber>{line}</ie:ErrorLineNumber><ie:ErrorColumnNumber>{column}</ie:ErrorColumnNumber><ie:ErrorReason>"
        ));
        crate::escape_text(at_most(&violation.message, ERROR_TEXT_CHARS), &mut out);
        out.push_str("</ie:ErrorReason><ie:ErrorLocation>");
        crate::escape_text(at_most(&violation.path, ERROR_TEXT_CHARS), &mut out);
        out.push_str("</ie:ErrorLocation></ie:XmlError>");
    }
    out.push_str("</ie:XmlNegativeAcknowledgement></ie:Body></ie:IE917>");
    out
}

/// How long an IE917's `ErrorReason` and `ErrorLocation` may be, in characters.
const ERROR_TEXT_CHARS: usize = 350;

/// The first `chars` characters of `text`.
fn at_most(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// The line and column (from 1, the message's root element on line 1) of the element that
/// `path` (`/IE815/Body/…/TransportDetails[1]/…`) names in `message`, or of its deepest
/// ancestor there.
fn position(message: &IeMessage<'_, '_>, path: &str) -> (u32, u32) {
    let mut node = message.root;
    for step in path.split('/').filter(|step| !step.is_empty()).skip(1) {
        let (name, index) = match step.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, index)) => (name, index.parse::<usize>().unwrap_or(1)),
            None => (step, 1),
        };
        match node
            .children()
            .filter(|child| child.is_element() && child.tag_name().name() == name)
            .nth(index.saturating_sub(1))
        {
            Some(child) => node = child,
            None => break,
        }
    }
    let document = message.root.document();
    let start = document.text_pos_at(message.root.range().start);
    let here = document.text_pos_at(node.range().start);
    let line = here.row - start.row + 1;
    let column = if here.row == start.row {
        here.col - start.col + 1
    } else {
        here.col
    };
    (line, column)
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
    use crate::message::SchemaVersion;
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
    fn skats_trigger_inputs_get_an_ie917_that_is_valid_itself() {
        for (structure, ie, message, location, version) in [
            (
                "OIOLedsageDokumentOpret",
                "IE815",
                IE815_TRIGGER.to_owned(),
                "/IE815/Body/SubmittedDraftOfEADESAD/TransportDetails[1]/TransportUnitCode",
                SchemaVersion::V3_23,
            ),
            (
                "OIOKvitteringOpret",
                "IE818",
                IE818_TRIGGER.to_owned(),
                "/IE818/Body/AcceptedOrRejectedReportOfReceiptExport",
                SchemaVersion::V3_23,
            ),
            (
                "OIOLedsageDokumentOpret",
                "IE815",
                IE815_TRIGGER.replace("V3.23", "V3.13"),
                "/IE815/Body/SubmittedDraftOfEADESAD/TransportDetails[1]/TransportUnitCode",
                SchemaVersion::V3_13,
            ),
        ] {
            let answer = call(structure, ie, &message);
            let answer = roxmltree::Document::parse(&answer).unwrap();
            assert!(text_of(&answer, "LedsagedokumentARCIdentifikator").is_none());
            assert!(text_of(&answer, "FejlIdentifikator").is_none());
            let ie917 = text_of(&answer, "IE917BeskedTekst").unwrap();
            let ie917 = roxmltree::Document::parse(ie917).unwrap();
            let root = ie917.root_element();
            assert_eq!(root.tag_name().name(), "IE917");
            let own = IeMessage {
                root,
                message_type: "IE917",
                version,
            };
            assert_eq!(own.validate(), Ok(()), "{ie} {version:?}");
            assert_eq!(text_of(&ie917, "ErrorLocation"), Some(location));
            let correlation = text_of(&ie917, "CorrelationIdentifier").unwrap();
            assert!(
                message.contains(&format!(">{correlation}<")),
                "{correlation}"
            );
        }
        // The line and column are those of the element in the message as sent.
        let answer = call("OIOLedsageDokumentOpret", "IE815", IE815_TRIGGER);
        let answer = roxmltree::Document::parse(&answer).unwrap();
        let ie917 =
            roxmltree::Document::parse(text_of(&answer, "IE917BeskedTekst").unwrap()).unwrap();
        let line: usize = text_of(&ie917, "ErrorLineNumber").unwrap().parse().unwrap();
        let column: usize = text_of(&ie917, "ErrorColumnNumber")
            .unwrap()
            .parse()
            .unwrap();
        let sent = IE815_TRIGGER.split_once("?>").unwrap().1.trim_start();
        let at = sent.lines().nth(line - 1).unwrap();
        assert!(
            at[column - 1..].starts_with("<ns26:TransportUnitCode>"),
            "line {line} column {column}: {at}"
        );
    }

    #[test]
    fn a_message_emcs_cannot_correlate_is_error_400() {
        let header = "<ie:Header ";
        assert!(IE815.contains(header));
        let headless =
            IE815
                .replacen(header, "<ie:Heading ", 1)
                .replacen("</ie:Header>", "</ie:Heading>", 1);
        let answer = call("OIOLedsageDokumentOpret", "IE815", &headless);
        let answer = roxmltree::Document::parse(&answer).unwrap();
        assert_eq!(text_of(&answer, "FejlIdentifikator"), Some("400"));
        assert!(text_of(&answer, "IE917BeskedTekst").is_none());
        assert!(text_of(&answer, "LedsagedokumentARCIdentifikator").is_none());
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
