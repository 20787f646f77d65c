//! The 23 services. Every one shares the `_I`/`_O` shape: a request element
//! `<structure>_I` and a response `<structure>_O`, an operation `get<structure>`, and an
//! endpoint path whose shape differs between services (three generations of SKAT's
//! deployment). A request is routed by its URL path, or by its Body's `_I` element: Java
//! stacks mangle the `å` of `getOIOPåmindelseSamlingHent` in the SOAPAction, and two services
//! use a SOAPAction without `get`, so the SOAPAction alone routes nothing.

/// How often a caller may call a service (seed 004: submitting 3 s apart, receiving 300 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Submits an IE document.
    Submit,
    /// Receives IE documents.
    Receive,
}

/// One service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Service {
    /// The WSDL's name, ASCII: `OIOLedsageDokumentOpret`, `OIOPaamindelseSamlingHent`.
    pub name: &'static str,
    /// The name of its structures and operation, as the WSDL spells it (with `å` where SKAT
    /// wrote one).
    pub structure: &'static str,
    /// The path of its endpoint, as in the WSDL's `soap:address`.
    pub path: &'static str,
    /// The SOAPAction the WSDL declares.
    pub soap_action: &'static str,
    pub kind: Kind,
}

impl Service {
    /// `<structure>_I`, the Body element of a request.
    pub fn request_element(&self) -> String {
        format!("{}_I", self.structure)
    }

    /// `<structure>_O`, the Body element of a response.
    pub fn response_element(&self) -> String {
        format!("{}_O", self.structure)
    }

    /// `get<structure>`, the WSDL operation.
    pub fn operation(&self) -> String {
        format!("get{}", self.structure)
    }

    /// The service whose endpoint is `path` (a trailing `/` is ignored).
    pub fn by_path(path: &str) -> Option<&'static Service> {
        let path = path.strip_suffix('/').unwrap_or(path);
        SERVICES.iter().find(|service| service.path == path)
    }

    /// The service whose request element has the local name `element`.
    pub fn by_request_element(element: &str) -> Option<&'static Service> {
        let structure = element.strip_suffix("_I")?;
        SERVICES
            .iter()
            .find(|service| service.structure == structure)
    }
}

/// A service whose structures are named like its WSDL (all but one).
const fn service(
    name: &'static str,
    path: &'static str,
    soap_action: &'static str,
    kind: Kind,
) -> Service {
    Service {
        name,
        structure: name,
        path,
        soap_action,
        kind,
    }
}

/// Every service, in the order of SKAT's WSDL directory.
pub const SERVICES: [Service; 23] = [
    service(
        "OIOBeskedAfvisningSamlingHent",
        "/EMCS_OIOBeskedAfvisningSamlingHent/OIOBeskedAfvisningSamlingHentServicePort",
        "getOIOBeskedAfvisningSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOEUReferenceDataAnmod",
        "/EMCS_OIOEUReferenceDataAnmod/OIOEUReferenceDataAnmodServicePortTypeImplService",
        "OIOEUReferenceDataAnmod",
        Kind::Submit,
    ),
    service(
        "OIOEUReferenceDataHent",
        "/EMCS_OIOEUReferenceDataHent/OIOEUReferenceDataHentServicePortTypeImplService",
        "OIOEUReferenceDataHent",
        Kind::Receive,
    ),
    service(
        "OIOEksportAfvisningSamlingHent",
        "/WebServices-ED_OIOEksportAfvisningSamlingHent-context-root/OIOEksportAfvisningSamlingHentServicePortTypeImplService",
        "getOIOEksportAfvisningSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOEksportAngivelseInvalideringNotifikationSamlingHent",
        "/EMCS_OIOEksportAngivelseInvalideringNotifikationSamlingHent/OIOEksportAngivelseInvalideringNotifikationSamlingHentServicePort",
        "getOIOEksportAngivelseInvalideringNotifikationSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOEksportGodkendelseSamlingHent",
        "/WebServices-ED_OIOEksportGodkendelseSamlingHent-context-root/OIOEksportGodkendelseSamlingHentServicePortTypeImplService",
        "getOIOEksportGodkendelseSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOForsendelseAfbrydelseBeskedSamlingHent",
        "/WebServices-ED_OIOForsendelseAfbrydelseBeskedSamlingHent-context-root/OIOForsendelseAfbrydelseBeskedSamlingHentServicePortTypeImplService",
        "getOIOForsendelseAfbrydelseBeskedSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOForsinkelseForklaringOpret",
        "/EMCS_OIOForsinkelseForklaringOpret/OIOForsinkelseForklaringOpretServicePortTypeImplService",
        "getOIOForsinkelseForklaringOpret",
        Kind::Submit,
    ),
    service(
        "OIOHaendelseRapportSamlingHent",
        "/WebServices-ED_OIOHaendelseRapportSamlingHent-context-root/OIOHaendelseRapportSamlingHentServicePortTypeImplService",
        "getOIOHaendelseRapportSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOKvitteringAfvigelseBegrundelseOpret",
        "/WebServices-ED_OIOKvitteringAfvigelseBegrundelseOpret-context-root/OIOKvitteringAfvigelseBegrundelseOpretServicePortTypeImplService",
        "getOIOKvitteringAfvigelseBegrundelseOpret",
        Kind::Submit,
    ),
    service(
        "OIOKvitteringOpret",
        "/EMCS_OIOKvitteringOpret/OIOKvitteringOpretServicePort",
        "getOIOKvitteringOpret",
        Kind::Submit,
    ),
    service(
        "OIOKvitteringSamlingHent",
        "/EMCS_OIOKvitteringSamlingHent/OIOKvitteringSamlingHentServicePort",
        "getOIOKvitteringSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOLedsageDokumentAnnulleringOpret",
        "/EMCS_OIOLedsageDokumentAnnulleringOpret/OIOLedsageDokumentAnnulleringOpretServicePortTypeImplService",
        "getOIOLedsageDokumentAnnulleringOpret",
        Kind::Submit,
    ),
    service(
        "OIOLedsageDokumentAnnulleringSamlingHent",
        "/EMCS_OIOLedsageDokumentAnnulleringSamlingHent/OIOLedsageDokumentAnnulleringSamlingHentServicePortTypeImplService",
        "getOIOLedsageDokumentAnnulleringSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOLedsageDokumentDestinationSkiftOpret",
        "/EMCS_OIOLedsageDokumentDestinationSkiftOpret/OIOLedsageDokumentDestinationSkiftOpretServicePortTypeImplService",
        "getOIOLedsageDokumentDestinationSkiftOpret",
        Kind::Submit,
    ),
    service(
        "OIOLedsageDokumentDestinationSkiftSamlingHent",
        "/EMCS_OIOLedsageDokumentDestinationSkiftSamlingHent/OIOLedsageDokumentDestinationSkiftSamlingHentServicePortTypeImplService",
        "getOIOLedsageDokumentDestinationSkiftSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOLedsageDokumentNotifikationOpret",
        "/WebServices-ED_OIOLedsageDokumentNotifikationOpret-context-root/OIOLedsageDokumentNotifikationOpretServicePortTypeImplService",
        "getOIOLedsageDokumentNotifikationOpret",
        Kind::Submit,
    ),
    service(
        "OIOLedsageDokumentNotifikationSamlingHent",
        "/WebServices-ED_OIOLedsageDokumentNotifikationSamlingHent-context-root/OIOLedsageDokumentNotifikationSamlingHentServicePortTypeImplService",
        "getOIOLedsageDokumentNotifikationSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOLedsageDokumentOmdirigeretAdvisSamlingHent",
        "/EMCS_OIOLedsageDokumentOmdirigeretAdvisSamlingHent/OIOLedsageDokumentOmdirigeretAdvisSamlingHentServicePortTypeImplService",
        "getOIOLedsageDokumentOmdirigeretAdvisSamlingHent",
        Kind::Receive,
    ),
    service(
        "OIOLedsageDokumentOpret",
        "/EMCS_OIOLedsageDokumentOpret/OIOLedsageDokumentOpretServicePort",
        "getOIOLedsageDokumentOpret",
        Kind::Submit,
    ),
    service(
        "OIOLedsageDokumentOpsplitningOpret",
        "/WebServicesFS2-B2B_FS2_LedsageDokumentOpsplitningOpret-context-root/OIOLedsageDokumentOpsplitningOpretServicePortTypeImplService",
        "getOIOLedsageDokumentOpsplitningOpret",
        Kind::Submit,
    ),
    service(
        "OIOLedsageDokumentSamlingHent",
        "/EMCS_OIOLedsageDokumentSamlingHent/OIOLedsageDokumentSamlingHentServicePort",
        "getOIOLedsageDokumentSamlingHent",
        Kind::Receive,
    ),
    Service {
        name: "OIOPaamindelseSamlingHent",
        structure: "OIOPåmindelseSamlingHent",
        path: "/EMCS_OIOPaamindelseSamlingHent/OIOPaamindelseSamlingHentServicePortTypeImplService",
        soap_action: "getOIOPåmindelseSamlingHent",
        kind: Kind::Receive,
    },
];
