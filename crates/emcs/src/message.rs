//! The IE message a submit request embeds (`<s:IE815Struktur><ie:IE815 …>`), and the checks
//! seed 004 makes of it before EMCS sees it: the message is there (105), names its trader
//! (103), and that trader is the excise number the request is made for (104). Seed 004 gives
//! these rules for the two messages that carry a trader of the caller's: IE815's consignor
//! (`OIOLedsageDokumentOpret`) and IE818's consignee (`OIOKvitteringOpret`).

use roxmltree::Node;

use crate::answer::GatewayError;
use crate::request::{Request, Trader};

/// How every IE message namespace starts; the message type and schema version follow
/// (`…:IE815:V3.23`).
pub(crate) const IE_NAMESPACE_PREFIX: &str = "urn:publicid:-:EC:DGTAXUD:EMCS:PHASE4:";

/// The EMCS schema versions the gateway takes, told apart by the message's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    V3_13,
    V3_23,
}

/// The trader of the caller's that an IE message must name (seed 004's errors 103 to 105).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraderRole {
    /// IE815's `ConsignorTrader/TraderExciseNumber`.
    Ie815Consignor,
    /// IE818's `ConsigneeTrader/Traderid`.
    Ie818Consignee,
}

impl TraderRole {
    /// The message type: `IE815`, `IE818`.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ie815Consignor => "IE815",
            Self::Ie818Consignee => "IE818",
        }
    }

    fn party(self) -> &'static str {
        match self {
            Self::Ie815Consignor => "ConsignorTrader",
            Self::Ie818Consignee => "ConsigneeTrader",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Ie815Consignor => "TraderExciseNumber",
            Self::Ie818Consignee => "Traderid",
        }
    }

    /// The role the request of the service `structure` must fill, if seed 004 names one.
    fn of_service(structure: &str) -> Option<Self> {
        match structure {
            "OIOLedsageDokumentOpret" => Some(Self::Ie815Consignor),
            "OIOKvitteringOpret" => Some(Self::Ie818Consignee),
            _ => None,
        }
    }
}

/// An embedded IE message: its root element, type and schema version.
#[derive(Debug, Clone, Copy)]
pub struct IeMessage<'a, 'input> {
    pub root: Node<'a, 'input>,
    /// `IE815`, `IE818`, ….
    pub message_type: &'a str,
    pub version: SchemaVersion,
}

impl<'a, 'input> Request<'a, 'input> {
    /// The IE message in the request's `<type>Struktur` element, if it has one: `None` when no
    /// such structure holds an element, `Err(InvalidFormat)` (400) when the element there is not
    /// an IE message of a version the gateway takes.
    pub fn ie_message(&self) -> Result<Option<IeMessage<'a, 'input>>, GatewayError> {
        let Some(root) = self
            .element
            .children()
            .filter(|child| {
                child.tag_name().namespace() == Some(crate::NAMESPACE)
                    && is_ie_structure(child.tag_name().name())
            })
            .find_map(|structure| structure.children().find(Node::is_element))
        else {
            return Ok(None);
        };
        let namespace = root.tag_name().namespace().unwrap_or_default();
        let (message_type, version) = namespace
            .strip_prefix(IE_NAMESPACE_PREFIX)
            .and_then(|rest| rest.split_once(":V"))
            .filter(|(message_type, _)| *message_type == root.tag_name().name())
            .ok_or(GatewayError::InvalidFormat)?;
        let version = match version {
            "3.13" => SchemaVersion::V3_13,
            "3.23" => SchemaVersion::V3_23,
            _ => return Err(GatewayError::InvalidFormat),
        };
        Ok(Some(IeMessage {
            root,
            message_type,
            version,
        }))
    }

    /// Seed 004's checks of the IE message against `trader`, for the services it names them
    /// for: the message is there (105), names the trader (103), and names `trader`'s excise
    /// number (104).
    pub fn check_message_trader(&self, trader: &Trader) -> Result<(), GatewayError> {
        let Some(role) = TraderRole::of_service(self.service.structure) else {
            return Ok(());
        };
        let message = self
            .ie_message()?
            .filter(|message| message.message_type == role.message())
            .ok_or(GatewayError::MessageMissing(role))?;
        let namespace = message.root.tag_name().namespace();
        let named = message
            .root
            .descendants()
            .find(|node| {
                node.tag_name().namespace() == namespace && node.has_tag_name(role.party())
            })
            .and_then(|party| {
                party
                    .children()
                    .find(|child| child.tag_name().name() == role.field())
            })
            .and_then(|field| field.text())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .ok_or(GatewayError::TraderMissingInMessage(role))?;
        if named != trader.excise_number {
            return Err(GatewayError::TraderMismatch(role));
        }
        Ok(())
    }
}

/// `IE<digits>Struktur`.
fn is_ie_structure(name: &str) -> bool {
    name.strip_prefix("IE")
        .and_then(|rest| rest.strip_suffix("Struktur"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{EMCS_NS, VIRKSOMHED_NS};

    const IE815: &str = include_str!("samples/ie815.xml");
    const IE815_OTHER_CONSIGNOR: &str = include_str!("samples/ie815-trigger-error-104.xml");
    const IE818: &str = include_str!("samples/ie818.xml");

    /// SKAT's sample consignor of `ie815.xml` and consignee of `ie818.xml`.
    const CONSIGNOR: &str = "DK82065873300";
    const CONSIGNEE: &str = "DK30808460300";

    /// A request of `structure` for the excise number `excise`, embedding `message` (an IE
    /// document, its XML declaration dropped) in `<ie>Struktur`.
    fn request(structure: &str, ie: &str, excise: &str, message: &str) -> String {
        let message = message
            .trim_start()
            .strip_prefix("<?xml")
            .and_then(|rest| rest.split_once("?>"))
            .map_or(message, |(_, rest)| rest);
        format!(
            r#"<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><s:{structure}_I xmlns:s="{ns}" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}"><s:VirksomhedIdentifikationStruktur><s:Indberetter><v:VirksomhedSENummerIdentifikator>30808460</v:VirksomhedSENummerIdentifikator></s:Indberetter><e:AfgiftOperatoerPunktAfgiftIdentifikator>{excise}</e:AfgiftOperatoerPunktAfgiftIdentifikator></s:VirksomhedIdentifikationStruktur><s:{ie}Struktur>{message}</s:{ie}Struktur></s:{structure}_I></soap:Body>"#,
            ns = crate::NAMESPACE,
        )
    }

    fn check(text: &str) -> Result<(), GatewayError> {
        let document = roxmltree::Document::parse(text).unwrap();
        let request = Request::of_body(document.root_element(), None).unwrap();
        let trader = request.trader()?;
        request.check_message_trader(&trader)
    }

    #[test]
    fn skats_samples_pass_for_their_own_traders() {
        let ie815 = request("OIOLedsageDokumentOpret", "IE815", CONSIGNOR, IE815);
        assert_eq!(check(&ie815), Ok(()));
        let ie818 = request("OIOKvitteringOpret", "IE818", CONSIGNEE, IE818);
        assert_eq!(check(&ie818), Ok(()));

        let document = roxmltree::Document::parse(&ie815).unwrap();
        let message = Request::of_body(document.root_element(), None)
            .unwrap()
            .ie_message()
            .unwrap()
            .unwrap();
        assert_eq!(message.message_type, "IE815");
        assert_eq!(message.version, SchemaVersion::V3_23);
    }

    #[test]
    fn a_message_of_another_trader_is_error_104() {
        let ie815 = request(
            "OIOLedsageDokumentOpret",
            "IE815",
            CONSIGNOR,
            IE815_OTHER_CONSIGNOR,
        );
        let refused = check(&ie815).unwrap_err();
        assert_eq!(
            refused,
            GatewayError::TraderMismatch(TraderRole::Ie815Consignor)
        );
        assert_eq!(refused.code(), 104);
        assert!(refused.text().contains("vareafsender (consignor) i IE815"));

        let ie818 = request("OIOKvitteringOpret", "IE818", CONSIGNOR, IE818);
        let refused = check(&ie818).unwrap_err();
        assert_eq!(
            refused,
            GatewayError::TraderMismatch(TraderRole::Ie818Consignee)
        );
        assert!(refused.text().contains("varemodtager (consignee) i IE818"));
    }

    #[test]
    fn a_message_without_its_trader_is_error_103() {
        let without = IE815.replace(
            &format!("<ns26:TraderExciseNumber>{CONSIGNOR}</ns26:TraderExciseNumber>"),
            "",
        );
        assert_ne!(without, IE815);
        let refused = check(&request(
            "OIOLedsageDokumentOpret",
            "IE815",
            CONSIGNOR,
            &without,
        ))
        .unwrap_err();
        assert_eq!(refused.code(), 103);
        assert!(refused.text().contains("'TraderExciseNumber'"));

        let without = IE818.replace(&format!("<ie:Traderid>{CONSIGNEE}</ie:Traderid>"), "");
        assert_ne!(without, IE818);
        let refused =
            check(&request("OIOKvitteringOpret", "IE818", CONSIGNEE, &without)).unwrap_err();
        assert_eq!(
            refused,
            GatewayError::TraderMissingInMessage(TraderRole::Ie818Consignee)
        );
        assert!(refused.text().contains("'TraderId'"));
    }

    #[test]
    fn a_missing_or_different_message_is_error_105() {
        let empty = request("OIOLedsageDokumentOpret", "IE815", CONSIGNOR, "");
        let refused = check(&empty).unwrap_err();
        assert_eq!(refused.code(), 105);
        assert_eq!(refused.text(), "IE815-besked mangler");

        let other = request("OIOLedsageDokumentOpret", "IE815", CONSIGNOR, IE818);
        assert_eq!(
            check(&other),
            Err(GatewayError::MessageMissing(TraderRole::Ie815Consignor))
        );
        let receipt = request("OIOKvitteringOpret", "IE818", CONSIGNEE, "");
        assert_eq!(check(&receipt).unwrap_err().text(), "IE818-besked mangler");
    }

    #[test]
    fn a_message_of_an_unknown_version_or_not_an_ie_is_error_400() {
        for (from, to) in [
            ("EMCS:PHASE4:IE815:V3.23", "EMCS:PHASE4:IE815:V9.99"),
            ("EMCS:PHASE4:IE815:V3.23", "EMCS:PHASE4:IE818:V3.23"),
            (
                "urn:publicid:-:EC:DGTAXUD:EMCS:PHASE4:IE815:V3.23",
                "urn:example:not-emcs",
            ),
        ] {
            let changed = IE815.replacen(from, to, 1);
            assert_ne!(changed, IE815);
            let refused = check(&request(
                "OIOLedsageDokumentOpret",
                "IE815",
                CONSIGNOR,
                &changed,
            ))
            .unwrap_err();
            assert_eq!(refused, GatewayError::InvalidFormat, "{to}");
            assert_eq!(refused.code(), 400);
        }
        let v313 = IE815.replace("V3.23", "V3.13");
        assert_eq!(
            check(&request(
                "OIOLedsageDokumentOpret",
                "IE815",
                CONSIGNOR,
                &v313
            )),
            Ok(())
        );
    }

    #[test]
    fn services_without_a_trader_rule_take_any_message() {
        let other = request("OIOLedsageDokumentAnnulleringOpret", "IE810", CONSIGNOR, "");
        assert_eq!(check(&other), Ok(()));
    }
}
