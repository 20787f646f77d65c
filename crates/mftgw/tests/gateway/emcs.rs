//! The EMCS B2B web services (seed 004) end to end: requests secured by WSS4J 1.6 (the
//! independent WS-Security peer), sent with curl to the demo's HTTPS endpoint, and answers
//! opened and verified by WSS4J; the WSDLs and their schemas; the caller's refusals, the
//! message rules, call spacing and the transaction each call becomes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mftgw::demo::EmcsUser;
use mftgw_emcs::services::{Kind, SERVICES};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{Demo, run};

#[path = "../../../wssec/tests/wssec/wss4j/client.rs"]
mod wss4j;
use wss4j::{KeyStore, Wss4j, trust_store};

pub(crate) const IE815: &str = include_str!("../../../emcs/src/samples/ie815.xml");
const IE815_IE917: &str =
    include_str!("../../../emcs/src/samples/ie815-triggers-ie917-response.xml");
const IE818: &str = include_str!("../../../emcs/src/samples/ie818.xml");

const KONTEKST_NS: &str = "http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/";
const VIRKSOMHED_NS: &str =
    "http://rep.oio.dk/skat.dk/motor/class/virksomhed/xml/schemas/20080401/";
const EMCS_NS: &str = "urn:oio:skat:emcs:1.0.1";

/// A certificate and key to call with: a PKCS#12 file and its password.
pub(crate) struct Caller {
    p12: PathBuf,
    p12_password: String,
    se_number: String,
    excise_number: String,
}

impl Caller {
    fn key_store(&self) -> KeyStore<'_> {
        KeyStore {
            file: &self.p12,
            password: &self.p12_password,
        }
    }
}

impl From<&EmcsUser> for Caller {
    fn from(user: &EmcsUser) -> Self {
        Self {
            p12: user.p12.clone(),
            p12_password: user.p12_password.clone(),
            se_number: user.se_number.clone(),
            excise_number: user.excise_number.clone(),
        }
    }
}

/// The demo's EMCS endpoint and a compiled WSS4J client.
struct Emcs<'a> {
    demo: &'a Demo,
    wss4j: Wss4j,
    gateway_der: PathBuf,
    trust: PathBuf,
    dir: PathBuf,
}

/// What came back from a call.
#[derive(Debug)]
enum Reply {
    /// HTTP 200: the answer, decrypted and verified by WSS4J, and WSS4J's report.
    Answer { body: String, report: String },
    /// HTTP 500: a SOAP fault's faultstring.
    Fault(String),
}

impl Reply {
    fn answer(self) -> (String, String) {
        match self {
            Reply::Answer { body, report } => (body, report),
            Reply::Fault(fault) => panic!("a fault instead of an answer: {fault}"),
        }
    }

    fn fault(self) -> String {
        match self {
            Reply::Fault(fault) => fault,
            Reply::Answer { body, .. } => panic!("an answer instead of a fault: {body}"),
        }
    }
}

impl<'a> Emcs<'a> {
    fn new(demo: &'a Demo) -> Self {
        let emcs = demo.manifest().emcs.as_ref().expect("the demo serves EMCS");
        let dir = demo.dir.path().join("emcs");
        std::fs::create_dir_all(&dir).unwrap();
        let gateway = CertificateDer::from_pem_file(&emcs.server_wss_cert_pem).unwrap();
        let gateway_der = dir.join("gateway-wss.der");
        std::fs::write(&gateway_der, gateway.as_ref()).unwrap();
        let trust = trust_store(
            &dir.join("trust.p12"),
            &[&emcs.tls_ca_pem, &demo.data_dir().join("pki/ca/oces3.pem")],
        );
        Self {
            demo,
            wss4j: Wss4j::compile(&dir),
            gateway_der,
            trust,
            dir,
        }
    }

    fn url(&self, service: &str) -> String {
        let emcs = self.demo.manifest().emcs.as_ref().unwrap();
        emcs.endpoints
            .get(service)
            .unwrap_or_else(|| panic!("no endpoint {service}"))
            .clone()
    }

    fn user(&self, index: usize) -> Caller {
        Caller::from(&self.demo.manifest().emcs.as_ref().unwrap().users[index])
    }

    fn refused(&self, why: &str) -> Caller {
        let certificate = &self.demo.manifest().emcs.as_ref().unwrap().refused[why];
        let user = self.user(0);
        Caller {
            p12: certificate.p12.clone(),
            p12_password: certificate.p12_password.clone(),
            ..user
        }
    }

    /// `caller` calls `service` with `content` in its `_I` element after the trader, secured
    /// by WSS4J for the gateway's WS-Security certificate.
    fn call(&self, caller: &Caller, service: &str, transaction_id: &str, content: &str) -> Reply {
        let call = Call {
            service,
            transaction_id,
            content,
        };
        self.call_all(caller, &[call], &self.gateway_der, false)
            .remove(0)
    }

    /// The calls, secured by WSS4J for `recipient` (with its Basic Security Profile
    /// compliance on or off) in one run, sent one after another, and the answers opened by
    /// WSS4J in one run.
    fn call_all(
        &self,
        caller: &Caller,
        calls: &[Call<'_>],
        recipient: &Path,
        bsp: bool,
    ) -> Vec<Reply> {
        let sent = self
            .secure(caller, calls, recipient, bsp)
            .into_iter()
            .zip(calls)
            .map(|(secured, call)| self.send(&self.url(call.service), &secured))
            .collect();
        self.replies(sent, &caller.key_store())
    }

    /// The calls' requests secured by WSS4J in one run: the files holding them.
    fn secure(
        &self,
        caller: &Caller,
        calls: &[Call<'_>],
        recipient: &Path,
        bsp: bool,
    ) -> Vec<PathBuf> {
        let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
        self.secure_at(caller, calls, recipient, bsp, &now)
    }

    /// [`Emcs::secure`] with `time` as every call's TransaktionTid.
    fn secure_at(
        &self,
        caller: &Caller,
        calls: &[Call<'_>],
        recipient: &Path,
        bsp: bool,
        time: &str,
    ) -> Vec<PathBuf> {
        let file = |call: &Call<'_>, suffix: &str| {
            let name = format!("{}-{}", call.service, call.transaction_id.replace('/', "_"));
            self.dir.join(format!("{name}.{suffix}.xml"))
        };
        for call in calls {
            let envelope = format!(
                r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"#,
                request_element(caller, call, time),
            );
            std::fs::write(file(call, "request"), envelope).unwrap();
        }
        let (requests, secured): (Vec<PathBuf>, Vec<PathBuf>) = calls
            .iter()
            .map(|call| (file(call, "request"), file(call, "secured")))
            .unzip();
        let pairs: Vec<(&Path, &Path)> = requests
            .iter()
            .zip(&secured)
            .map(|(request, secured)| (request.as_path(), secured.as_path()))
            .collect();
        self.wss4j.seal(&pairs, &caller.key_store(), recipient, bsp);
        secured
    }

    /// POSTs the file `request` to `url` with curl: the HTTP status and the file holding
    /// the answer.
    fn send(&self, url: &str, request: &Path) -> (String, PathBuf) {
        let response = request.with_extension("response.xml");
        let (ok, status, err) = run(Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.demo.manifest().emcs.as_ref().unwrap().tls_ca_pem)
            .args(["-H", "Content-Type: text/xml; charset=utf-8"])
            .args(["-H", "SOAPAction: \"\""])
            .args(["-w", "%{http_code}", "-o"])
            .arg(&response)
            .arg("--data-binary")
            .arg(format!("@{}", request.display()))
            .arg(url));
        assert!(ok, "curl failed: {err}");
        (status, response)
    }

    /// What each `(status, answer file)` says, the answers opened by WSS4J for `client`.
    fn replies(&self, sent: Vec<(String, PathBuf)>, client: &KeyStore<'_>) -> Vec<Reply> {
        let opened: Vec<PathBuf> = sent
            .iter()
            .map(|(_, response)| response.with_extension("opened.xml"))
            .collect();
        let answered: Vec<(&Path, &Path)> = sent
            .iter()
            .zip(&opened)
            .filter(|((status, _), _)| status == "200")
            .map(|((_, response), opened)| (response.as_path(), opened.as_path()))
            .collect();
        let mut reports = if answered.is_empty() {
            Vec::new()
        } else {
            self.wss4j.open(&answered, client, &self.trust)
        }
        .into_iter();
        sent.iter()
            .zip(&opened)
            .map(|((status, response), opened)| {
                let text = std::fs::read_to_string(response).unwrap();
                match status.as_str() {
                    "200" => {
                        let opened = std::fs::read_to_string(opened).unwrap();
                        let body = opened
                            .split_once(":Body")
                            .map(|(_, body)| body.to_owned())
                            .unwrap();
                        Reply::Answer {
                            body,
                            report: reports.next().unwrap(),
                        }
                    }
                    "500" => Reply::Fault(
                        element_text(&text, "faultstring")
                            .unwrap_or_else(|| panic!("not a fault: {text}")),
                    ),
                    other => panic!("HTTP {other}: {text}"),
                }
            })
            .collect()
    }
}

/// One call: to which service, with which TransaktionIdentifikator and `_I` content after
/// the trader.
pub(crate) struct Call<'a> {
    pub(crate) service: &'a str,
    pub(crate) transaction_id: &'a str,
    pub(crate) content: &'a str,
}

/// The `_I` element of `call` by `caller` at `time` (its TransaktionTid): the HovedOplysninger,
/// the trader, then the call's content.
pub(crate) fn request_element(caller: &Caller, call: &Call<'_>, time: &str) -> String {
    let element = SERVICES
        .iter()
        .find(|service| service.name == call.service)
        .unwrap_or_else(|| panic!("no service {}", call.service))
        .request_element();
    format!(
        r#"<s:{element} xmlns:s="urn:oio:skat:emcs:ws:1.0.1" xmlns:k="{KONTEKST_NS}" xmlns:v="{VIRKSOMHED_NS}" xmlns:e="{EMCS_NS}"><k:HovedOplysninger><k:TransaktionIdentifikator>{id}</k:TransaktionIdentifikator><k:TransaktionTid>{time}</k:TransaktionTid></k:HovedOplysninger><s:VirksomhedIdentifikationStruktur><s:Indberetter><v:VirksomhedSENummerIdentifikator>{se}</v:VirksomhedSENummerIdentifikator></s:Indberetter><e:AfgiftOperatoerPunktAfgiftIdentifikator>{excise}</e:AfgiftOperatoerPunktAfgiftIdentifikator></s:VirksomhedIdentifikationStruktur>{content}</s:{element}>"#,
        id = call.transaction_id,
        se = caller.se_number,
        excise = caller.excise_number,
        content = call.content,
    )
}

/// An IE document as `<ie>Struktur` content, its XML declaration dropped.
pub(crate) fn structure(ie: &str, message: &str) -> String {
    let message = message
        .trim_start()
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
        .map_or(message, |(_, rest)| rest);
    format!("<s:{ie}Struktur>{message}</s:{ie}Struktur>")
}

/// The text of the first element of local name `name` in `xml`, whatever its prefix and
/// attributes, unescaped.
pub(crate) fn element_text(xml: &str, name: &str) -> Option<String> {
    let (_, rest) = xml.match_indices(name).find_map(|(at, _)| {
        let before = xml[..at].chars().next_back()?;
        let after = xml[at + name.len()..].chars().next()?;
        ((before == '<' || before == ':') && (after == '>' || after == ' '))
            .then(|| xml.split_at(at + name.len()))
            .filter(|(head, _)| !head.ends_with(&format!("</{name}")))
    })?;
    let content = &rest[rest.find('>')? + 1..];
    Some(
        content[..content.find('<')?]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The error codes of an answer's `FejlStruktur`s.
pub(crate) fn errors(body: &str) -> Vec<String> {
    body.match_indices("FejlIdentifikator>")
        .filter_map(|(at, _)| {
            let rest = &body[at + "FejlIdentifikator>".len()..];
            let end = rest.find('<')?;
            (end > 0).then(|| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn a_wss4j_client_submits_an_ie815_and_gets_a_signed_encrypted_arc() {
    // Long enough that two calls in this test always fall within it.
    let demo = Demo::start_with_env(&[("MFTGW__EMCS__SUBMIT_SPACING_SECS", "600")]);
    let emcs = Emcs::new(&demo);
    assert_eq!(
        demo.manifest().emcs.as_ref().unwrap().submit_spacing_secs,
        600
    );
    let consignor = emcs.user(1);
    // SKAT's sample IE815, to the other demo caller as its consignee.
    let consignee = emcs.user(0);
    let to_consignee = IE815.replace("DK99025875300", &consignee.excise_number);
    let (body, report) = emcs
        .call(
            &consignor,
            "OIOLedsageDokumentOpret",
            "lrn-0001/a",
            &structure("IE815", &to_consignee),
        )
        .answer();
    // WSS4J decrypted the answer and verified the gateway's signature over Body, Timestamp
    // and token, made with the WS-Security certificate (not the TLS one).
    for expected in [
        "decrypted",
        "timestamp",
        "signed Body",
        "signed Timestamp",
        "signed BinarySecurityToken",
    ] {
        assert!(
            report.lines().any(|line| line == expected),
            "{expected}: {report}"
        );
    }
    assert!(
        report.contains("signer ") && report.contains("EMCS B2B Gateway"),
        "{report}"
    );
    assert!(body.contains("OIOLedsageDokumentOpret_O"), "{body}");
    assert_eq!(
        element_text(&body, "TransaktionIdentifikator").as_deref(),
        Some("lrn-0001/a"),
        "{body}"
    );
    assert!(errors(&body).is_empty(), "{body}");
    let arc = element_text(&body, "LedsagedokumentARCIdentifikator").expect("an ARC");
    assert_eq!(arc.len(), 21, "{arc}");

    // The call is a transaction of the caller, answered.
    let username = &demo.manifest().emcs.as_ref().unwrap().users[1].username;
    let transactions = demo.transactions(username);
    let call = transactions
        .iter()
        .find(|t| t["service"] == "OIOLedsageDokumentOpret")
        .unwrap_or_else(|| panic!("{transactions:?}"));
    assert_eq!(call["ftp_transaction_id"], "lrn-0001%2Fa");
    assert_eq!(call["state"], "answered");
    let audit = demo.wait_for_audit("emcs.call", "allowed", None);
    assert_eq!(audit["username"], username.as_str(), "{audit}");

    // The same TransaktionIdentifikator again, on another service: 500, signed and encrypted.
    let (body, _) = emcs
        .call(
            &consignor,
            "OIOBeskedAfvisningSamlingHent",
            "lrn-0001/a",
            "",
        )
        .answer();
    assert_eq!(errors(&body), ["500"], "{body}");

    // A second submission to the same service at once: refused by call spacing, which
    // counts per caller and service.
    let fault = emcs
        .call(
            &consignor,
            "OIOLedsageDokumentOpret",
            "lrn-0002",
            &structure("IE815", IE815),
        )
        .fault();
    assert!(fault.contains("may be called again in"), "{fault}");
    demo.wait_for_audit("emcs.call", "refused", Some("call_spacing"));

    // An IE815 that EMCS's validation refuses: IE917 in the answer.
    let (body, _) = emcs
        .call(
            &emcs.user(0),
            "OIOLedsageDokumentOpret",
            "invalid-1",
            &structure(
                "IE815",
                &IE815_IE917.replace("DK82065873300", "DK30808460300"),
            ),
        )
        .answer();
    assert!(body.contains("IE917BeskedTekst"), "{body}");

    // An IE815 whose Header breaks its schema cannot be correlated to an IE917: the gateway
    // answers 400 itself, and the call reaches no backend.
    let unreadable_date = IE815.replace("DK82065873300", "DK30808460300").replacen(
        ">2011-10-26</tms:DateOfPreparation>",
        ">26.10.2011</tms:DateOfPreparation>",
        1,
    );
    assert!(unreadable_date.contains(">26.10.2011<"));
    let (body, _) = emcs
        .call(
            &emcs.user(0),
            "OIOLedsageDokumentOpret",
            "bad-header-1",
            &structure("IE815", &unreadable_date),
        )
        .answer();
    assert_eq!(errors(&body), ["400"], "{body}");
    let username = &demo.manifest().emcs.as_ref().unwrap().users[0].username;
    let transactions = demo.transactions(username);
    assert!(
        transactions
            .iter()
            .all(|t| t["ftp_transaction_id"] != "bad-header-1"),
        "{transactions:?}"
    );

    // An excise number no operator has (301); another company's SE number (302).
    let unknown = Caller {
        excise_number: "DK99999999999".into(),
        ..emcs.user(0)
    };
    let (body, _) = emcs
        .call(&unknown, "OIOLedsageDokumentSamlingHent", "op-1", "")
        .answer();
    assert_eq!(errors(&body), ["301"], "{body}");
    let other_company = Caller {
        se_number: emcs.user(1).se_number,
        ..emcs.user(0)
    };
    let (body, _) = emcs
        .call(
            &other_company,
            "OIOLedsageDokumentNotifikationSamlingHent",
            "op-2",
            "",
        )
        .answer();
    assert_eq!(errors(&body), ["302"], "{body}");

    // IE818 from its consignee for that movement, which EMCS forwards to the consignor: its
    // receiving service finds it, once.
    let receipt = IE818.replace("18DK6T3AQYMQQWRQWSK05", &arc);
    let (body, _) = emcs
        .call(
            &consignee,
            "OIOKvitteringOpret",
            "rcpt-1",
            &structure("IE818", &receipt),
        )
        .answer();
    assert!(errors(&body).is_empty(), "{body}");
    let (body, _) = emcs
        .call(&consignor, "OIOKvitteringSamlingHent", "collect-1", "")
        .answer();
    let forwarded = element_text(&body, "IE818BeskedTekst").expect("the receipt");
    assert!(forwarded.contains(&arc), "{forwarded}");
    assert!(
        element_text(&body, "AdvisIdentifikator").is_none(),
        "{body}"
    );

    // And 104 when the message names another trader.
    let (body, _) = emcs
        .call(
            &consignor,
            "OIOKvitteringOpret",
            "rcpt-2",
            &structure("IE818", IE818),
        )
        .answer();
    assert_eq!(errors(&body), ["104"], "{body}");
}

#[test]
fn callers_that_may_not_call_are_refused_and_audited() {
    let demo = Demo::start();
    let emcs = Emcs::new(&demo);
    let cases = [
        ("employee", "certificate_kind", "OCES3 organisation"),
        ("revoked", "certificate_refused", "revoked"),
        ("expired", "certificate_refused", "expired"),
        ("unregistered", "unknown_certificate", "never registered"),
        ("no_emcs_role", "no_role", "EMCS role"),
    ];
    for (index, (why, reason, text)) in cases.into_iter().enumerate() {
        let fault = emcs
            .call(
                &emcs.refused(why),
                "OIOKvitteringSamlingHent",
                &format!("refused-{index}"),
                "",
            )
            .fault();
        assert!(fault.contains(text), "{why}: {fault}");
        demo.wait_for_audit("emcs.call", "refused", Some(reason));
    }

    // Encrypted for another key than the gateway's: one generic fault.
    let other = demo.dir.path().join("emcs/other.der");
    let user = &demo.manifest().emcs.as_ref().unwrap().users[1];
    std::fs::write(
        &other,
        CertificateDer::from_pem_file(&user.cert_pem)
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let wrong_key = Call {
        service: "OIOKvitteringSamlingHent",
        transaction_id: "wrong-key",
        content: "",
    };
    let fault = emcs
        .call_all(&emcs.user(0), &[wrong_key], &other, false)
        .remove(0)
        .fault();
    assert_eq!(fault, "the message cannot be decrypted");
    demo.wait_for_audit("emcs.call", "refused", Some("undecryptable"));

    // Not secured at all.
    let plain = demo.dir.path().join("emcs/plain.xml");
    std::fs::write(
        &plain,
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>"#,
    )
    .unwrap();
    let caller = emcs.user(0);
    let sent = emcs.send(&emcs.url("OIOKvitteringSamlingHent"), &plain);
    let fault = emcs
        .replies(vec![sent], &caller.key_store())
        .remove(0)
        .fault();
    assert!(fault.contains("WS-Security"), "{fault}");
}

#[test]
fn every_wsdl_is_served_with_its_address_and_schemas() {
    let demo = Demo::start();
    let emcs = demo.manifest().emcs.as_ref().unwrap();
    assert_eq!(emcs.endpoints.len(), 23);
    assert_eq!(emcs.kinds["OIOLedsageDokumentOpret"], "submit");
    assert_eq!(emcs.kinds["OIOKvitteringSamlingHent"], "receive");
    assert_eq!(emcs.wsdl_urls.len(), 23);
    let get = |url: &str| {
        let (ok, body, err) = run(Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(&emcs.tls_ca_pem)
            .arg(url));
        assert!(ok, "GET {url}: {err}");
        body
    };
    for (service, url) in &emcs.endpoints {
        let wsdl = get(&emcs.wsdl_urls[service]);
        assert!(
            wsdl.contains(&format!("location=\"{url}\"")),
            "{service}: {wsdl}"
        );
        let first_schema = wsdl
            .split("schemaLocation=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert!(first_schema.starts_with(&format!("{url}?xsd=")));
        let schema = get(first_schema);
        assert!(schema.contains("schema"), "{schema}");
    }
}

#[test]
fn wss4j_calls_every_service_and_verifies_every_answer() {
    let demo = Demo::start();
    let emcs = Emcs::new(&demo);
    let caller = emcs.user(1);
    let ie818 = IE818.replace("DK30808460300", &caller.excise_number);
    let contents: Vec<(String, String)> = SERVICES
        .iter()
        .map(|service| {
            let content = match service.name {
                "OIOLedsageDokumentOpret" => structure("IE815", IE815),
                "OIOKvitteringOpret" => structure("IE818", &ie818),
                _ => String::new(),
            };
            (format!("all-{}", service.name), content)
        })
        .collect();
    let calls: Vec<Call<'_>> = SERVICES
        .iter()
        .zip(&contents)
        .map(|(service, (id, content))| Call {
            service: service.name,
            transaction_id: id,
            content,
        })
        .collect();
    let replies = emcs.call_all(&caller, &calls, &emcs.gateway_der, false);
    assert_eq!(replies.len(), 23);
    for (service, reply) in SERVICES.iter().zip(replies) {
        let (body, report) = reply.answer();
        for expected in ["decrypted", "signed Body", "signed Timestamp"] {
            assert!(
                report.lines().any(|line| line == expected),
                "{}: {expected}: {report}",
                service.name
            );
        }
        assert!(
            body.contains(&service.response_element()),
            "{}: {body}",
            service.name
        );
        assert_eq!(
            element_text(&body, "TransaktionIdentifikator"),
            Some(format!("all-{}", service.name))
        );
        assert!(errors(&body).is_empty(), "{}: {body}", service.name);
        if service.kind == Kind::Receive {
            assert_eq!(
                element_text(&body, "AdvisIdentifikator").as_deref(),
                Some("130"),
                "{}: {body}",
                service.name
            );
        }
    }
    assert_eq!(
        demo.transactions(&demo.manifest().emcs.as_ref().unwrap().users[1].username)
            .iter()
            .filter(|transaction| transaction["state"] == "answered")
            .count(),
        23
    );

    // WSS4J's default, Basic Security Profile compliance, puts a prefix list in every
    // exclusive c14n transform: refused.
    let bsp = Call {
        service: "OIOKvitteringSamlingHent",
        transaction_id: "bsp-1",
        content: "",
    };
    let fault = emcs
        .call_all(&emcs.user(0), &[bsp], &emcs.gateway_der, true)
        .remove(0)
        .fault();
    assert!(fault.contains("InclusiveNamespaces prefix list"), "{fault}");
}

#[test]
fn calls_come_chunked_or_whole_on_kept_alive_connections() {
    let demo = Demo::start();
    let emcs = Emcs::new(&demo);
    let caller = emcs.user(0);
    let client = caller.key_store();
    let services = ["OIOKvitteringSamlingHent", "OIOLedsageDokumentSamlingHent"];
    let ids = services.map(|service| format!("wire-{service}"));
    let calls: Vec<Call<'_>> = services
        .iter()
        .zip(&ids)
        .map(|(service, id)| Call {
            service,
            transaction_id: id,
            content: "",
        })
        .collect();
    // A TransaktionTid with an offset.
    let secured = emcs.secure_at(
        &caller,
        &calls,
        &emcs.gateway_der,
        false,
        "2026-12-06T23:59:00+01:00",
    );
    // One curl, two requests on one connection: the first chunked, the second whole.
    let responses: Vec<PathBuf> = secured
        .iter()
        .map(|secured| secured.with_extension("response.xml"))
        .collect();
    let ca = &demo.manifest().emcs.as_ref().unwrap().tls_ca_pem;
    let (ok, connections, err) = run(Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .args(["-H", "Content-Type: text/xml; charset=utf-8"])
        .args(["-H", "Transfer-Encoding: chunked"])
        .arg("--data-binary")
        .arg(format!("@{}", secured[0].display()))
        .arg("-o")
        .arg(&responses[0])
        .arg(emcs.url(services[0]))
        .arg("--next")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .args(["-H", "Content-Type: text/xml; charset=utf-8"])
        .arg("--data-binary")
        .arg(format!("@{}", secured[1].display()))
        .arg("-o")
        .arg(&responses[1])
        .args(["-w", "%{num_connects}"])
        .arg(emcs.url(services[1])));
    assert!(ok, "{err}");
    assert_eq!(connections, "0", "the second request reused the connection");
    let sent = responses
        .iter()
        .map(|response| ("200".to_string(), response.clone()))
        .collect();
    for (service, reply) in services.iter().zip(emcs.replies(sent, &client)) {
        let (body, _) = reply.answer();
        assert_eq!(
            element_text(&body, "TransaktionIdentifikator"),
            Some(format!("wire-{service}"))
        );
        // TransaktionTid with an offset was taken.
        assert!(errors(&body).is_empty(), "{body}");
    }
}

#[test]
fn a_call_emcs_does_not_answer_in_time_is_2000_and_holds_back_the_callers_next() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__EMCS__BACKEND_DOWN", "true"),
        ("MFTGW__EMCS__ANSWER_TIMEOUT_SECS", "4"),
    ]);
    let emcs = Emcs::new(&demo);
    let caller = emcs.user(0);
    let calls = [
        Call {
            service: "OIOKvitteringSamlingHent",
            transaction_id: "down-1",
            content: "",
        },
        Call {
            service: "OIOLedsageDokumentSamlingHent",
            transaction_id: "down-2",
            content: "",
        },
    ];
    let secured = emcs.secure(&caller, &calls, &emcs.gateway_der, false);
    let username = &demo.manifest().emcs.as_ref().unwrap().users[0].username;
    let waiting = std::thread::scope(|scope| {
        let first = scope.spawn(|| emcs.send(&emcs.url(calls[0].service), &secured[0]));
        // The second call comes while the first waits for EMCS.
        let deadline = Instant::now() + Duration::from_secs(20);
        while demo.transactions(username).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the first call was never committed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let second = emcs.send(&emcs.url(calls[1].service), &secured[1]);
        emcs.replies(vec![first.join().unwrap(), second], &caller.key_store())
    });
    let [first, second]: [Reply; 2] = waiting.try_into().unwrap();
    let second = second.fault();
    assert!(second.contains("still being answered"), "{second}");
    let (body, _) = first.answer();
    assert_eq!(errors(&body), ["2000"], "{body}");
    let username = &demo.manifest().emcs.as_ref().unwrap().users[0].username;
    let transactions = demo.transactions(username);
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(
        transactions[0]["state"], "rejected",
        "never delivered later"
    );
}
