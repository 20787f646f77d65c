//! The answers of seed 004: every answer carries `HovedOplysningerSvar` with the caller's
//! `TransaktionIdentifikator`, and an error is a `FejlStruktur` in it, with the gateway's
//! error codes ([`GatewayError`]) and their Danish texts as SKAT publishes them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::message::TraderRole;
use crate::request::{HovedOplysninger, KONTEKST_NS};
use crate::services::Service;

/// The errors the gateway itself answers with, before a request reaches EMCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayError {
    /// 100: no `VirksomhedSENummerIdentifikator`.
    SeNumberMissing,
    /// 101: no `AfgiftOperatoerPunktAfgiftIdentifikator`.
    ExciseNumberMissing,
    /// 102: the excise number is not two capital letters and eleven letters or digits.
    ExciseNumberMalformed,
    /// 301: the excise number is not one of a registered excise operator.
    ExciseNumberUnknown,
    /// 302: the operator has not delegated its rights to the calling company, or the SE
    /// number is not the calling certificate's company's.
    NotPermitted,
    /// 103: the IE message does not name the trader in its role.
    TraderMissingInMessage(TraderRole),
    /// 104: the IE message names another trader than the request's excise number.
    TraderMismatch(TraderRole),
    /// 105: the request holds no IE message of the type its service takes.
    MessageMissing(TraderRole),
    /// 400: the message does not match its schema.
    InvalidFormat,
    /// 500: the `TransaktionIdentifikator` was used before.
    TransactionIdReused,
    /// 1000: a technical failure in the gateway.
    Technical,
    /// 2000: the EMCS backend is out of service.
    OutOfService,
}

impl GatewayError {
    pub fn code(self) -> u32 {
        match self {
            Self::SeNumberMissing => 100,
            Self::ExciseNumberMissing => 101,
            Self::ExciseNumberMalformed => 102,
            Self::ExciseNumberUnknown => 301,
            Self::NotPermitted => 302,
            Self::TraderMissingInMessage(_) => 103,
            Self::TraderMismatch(_) => 104,
            Self::MessageMissing(_) => 105,
            Self::InvalidFormat => 400,
            Self::TransactionIdReused => 500,
            Self::Technical => 1000,
            Self::OutOfService => 2000,
        }
    }

    /// SKAT's text for the code.
    pub fn text(self) -> &'static str {
        match self {
            Self::SeNumberMissing => "Feltet 'VirksomhedSENummerIdentifikator' skal udfyldes",
            Self::ExciseNumberMissing => {
                "Feltet 'AfgiftOperatoerPunktAfgiftIdentifikator' skal udfyldes"
            }
            Self::ExciseNumberMalformed => {
                "Feltet 'AfgiftOperatoerPunktAfgiftIdentifikator' er ikke korrekt opbygget"
            }
            Self::ExciseNumberUnknown => {
                "Punktafgiftnummeret angivet i AfgiftOperatoerPunktAfgiftIdentifikator er ikke et gyldigt punktafgiftnummer"
            }
            Self::NotPermitted => {
                "Den angivet afgift operatoer har enten ikke tillades til at udfoere denne operation eller har ikke delegeret sine rettigheder til det firma hvis certifikat er anvendt i kaldet af webservicen."
            }
            Self::TraderMissingInMessage(TraderRole::Ie815Consignor) => {
                "Feltet 'TraderExciseNumber' er ikke udfyldt i IE-beskeden"
            }
            Self::TraderMissingInMessage(TraderRole::Ie818Consignee) => {
                "Feltet 'TraderId' er ikke udfyldt i IE-beskeden"
            }
            Self::TraderMismatch(TraderRole::Ie815Consignor) => {
                "Den angivet afgift operatoer stemmer ikke overens med vareafsender (consignor) i IE815 beskeden"
            }
            Self::TraderMismatch(TraderRole::Ie818Consignee) => {
                "Den angivet afgift operatoer stemmer ikke overens med varemodtager (consignee) i IE818 beskeden"
            }
            Self::MessageMissing(TraderRole::Ie815Consignor) => "IE815-besked mangler",
            Self::MessageMissing(TraderRole::Ie818Consignee) => "IE818-besked mangler",
            Self::InvalidFormat => "Beskedens format er ikke gyldig",
            Self::TransactionIdReused => {
                "Det anvendte transaktions-ID er allerede benyttet i et tidligere kald"
            }
            Self::Technical => {
                "Der er sket en teknisk fejl i denne B2B-service. Kontakt venligst SKAT"
            }
            Self::OutOfService => "Denne service er midlertidigt ude af drift",
        }
    }
}

/// One entry of an answer's `SvarStruktur`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// `FejlStruktur`: the request failed.
    Error { code: u32, text: &'a str },
    /// `AdvisStruktur`: something to know, e.g. EMCS's 130 (no messages found).
    Advice { code: u32, text: &'a str },
}

/// The `_O` element of `service` answering `request` at `at`: `HovedOplysningerSvar` with the
/// caller's `TransaktionIdentifikator` and `notices`, followed by `output` (XML the service's
/// `_O` type has after it, carrying its own namespace declarations).
pub fn answer(
    service: &Service,
    request: &HovedOplysninger,
    at: OffsetDateTime,
    notices: &[Notice<'_>],
    output: Option<&str>,
) -> String {
    let mut out = format!(
        r#"<s:{element} xmlns:s="{namespace}"><k:HovedOplysningerSvar xmlns:k="{KONTEKST_NS}"><k:TransaktionIdentifikator>"#,
        element = service.response_element(),
        namespace = crate::NAMESPACE,
    );
    crate::escape_text(&request.transaction_id, &mut out);
    out.push_str("</k:TransaktionIdentifikator><k:ServiceIdentifikator>");
    out.push_str(service.name);
    out.push_str("</k:ServiceIdentifikator><k:TransaktionTid>");
    out.push_str(&at.format(&Rfc3339).unwrap_or_default());
    out.push_str("</k:TransaktionTid><k:SvarStruktur>");
    for notice in notices {
        let (kind, code, text) = match *notice {
            Notice::Error { code, text } => ("Fejl", code, text),
            Notice::Advice { code, text } => ("Advis", code, text),
        };
        out.push_str(&format!(
            "<k:{kind}Struktur><k:{kind}Identifikator>{code}</k:{kind}Identifikator><k:{kind}Tekst>"
        ));
        crate::escape_text(text, &mut out);
        out.push_str(&format!("</k:{kind}Tekst></k:{kind}Struktur>"));
    }
    out.push_str("</k:SvarStruktur></k:HovedOplysningerSvar>");
    out.push_str(output.unwrap_or_default());
    out.push_str(&format!("</s:{}>", service.response_element()));
    out
}

/// The `_O` element of `service` answering `request` at `at` with `error` and nothing else.
pub fn error_answer(
    service: &Service,
    request: &HovedOplysninger,
    at: OffsetDateTime,
    error: GatewayError,
) -> String {
    let notice = Notice::Error {
        code: error.code(),
        text: error.text(),
    };
    answer(service, request, at, &[notice], None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::SERVICES;

    #[test]
    fn an_error_answer_repeats_the_transaction_and_carries_the_code_and_text() {
        let service = SERVICES
            .iter()
            .find(|service| service.name == "OIOPaamindelseSamlingHent")
            .unwrap();
        let request = HovedOplysninger {
            transaction_id: "T<1>&2".into(),
            transaction_time: time::macros::datetime!(2026-12-03 12:00 UTC),
        };
        let at = time::macros::datetime!(2026-12-03 12:00:01 UTC);
        let text = error_answer(service, &request, at, GatewayError::TransactionIdReused);
        let document = roxmltree::Document::parse(&text).unwrap();
        let root = document.root_element();
        assert!(root.has_tag_name((crate::NAMESPACE, "OIOPåmindelseSamlingHent_O")));
        let field = |name: &str| {
            document
                .descendants()
                .find(|node| node.has_tag_name((KONTEKST_NS, name)))
                .and_then(|node| node.text())
                .unwrap()
                .to_owned()
        };
        assert_eq!(field("TransaktionIdentifikator"), "T<1>&2");
        assert_eq!(field("ServiceIdentifikator"), "OIOPaamindelseSamlingHent");
        assert_eq!(field("TransaktionTid"), "2026-12-03T12:00:01Z");
        assert_eq!(field("FejlIdentifikator"), "500");
        assert_eq!(
            field("FejlTekst"),
            "Det anvendte transaktions-ID er allerede benyttet i et tidligere kald"
        );
    }
}
