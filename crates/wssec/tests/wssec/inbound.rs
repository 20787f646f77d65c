//! The receiving order of `wsse::open` on messages a sender builds as SKAT's clients do: the
//! openssl command line makes the keys and certificates, signs the canonical SignedInfo
//! (`dgst -sha1 -sign`) and encrypts the Body content for the recipient (`pkeyutl`, `enc
//! -des-ede3-cbc`). The canonical forms come from `c14n::exclusive`, which [`crate::sample`]
//! holds to SKAT's own digests. Each refusal of the profile has its case.

use std::path::{Path, PathBuf};

use crate::support::{encrypted_for, openssl, party, private_key, subject_key_identifier};
use base64::Engine;
use mftgw_wssec::c14n;
use mftgw_wssec::dsig::{DSIG_NS, DsigError, EXC_C14N, RSA_SHA1, SHA1, WSU_NS};
use mftgw_wssec::wsse::{self, Policy, Recipient, SOAP11_NS, WsseError, X509V3};
use mftgw_wssec::xenc::{self, WSSE_NS, XencError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CONTENT: &str = "<m:OIOLedsageDokumentOpret_I xmlns:m=\"urn:oio:skat:emcs:ws:1.0.1\"><m:HovedOplysninger><m:TransaktionIdentifikator>T-1</m:TransaktionIdentifikator></m:HovedOplysninger></m:OIOLedsageDokumentOpret_I>";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// What a sender may get right or wrong.
#[derive(Clone)]
struct Sender {
    created: OffsetDateTime,
    expires: OffsetDateTime,
    /// Ids the signature references, of `ts`, `body`, `bst`.
    signed: Vec<&'static str>,
    /// A `wsse:Reference` in KeyInfo to this id.
    key_info_points_at: &'static str,
    prefix_list: bool,
}

impl Sender {
    fn at(now: OffsetDateTime) -> Self {
        Self {
            created: now,
            expires: now + time::Duration::seconds(60),
            signed: vec!["ts", "body", "bst"],
            key_info_points_at: "bst",
            prefix_list: false,
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    client: PathBuf,
    server: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let client = party(dir.path(), "client");
        let server = party(dir.path(), "server");
        Self {
            dir,
            client,
            server,
        }
    }

    fn der(&self, party: &Path) -> Vec<u8> {
        std::fs::read(party.with_extension("der")).unwrap()
    }

    fn recipient(&self, party: &Path) -> Recipient {
        Recipient {
            private_key: private_key(party),
            subject_key_identifier: subject_key_identifier(&self.der(party)),
        }
    }

    /// The signed plaintext message, before encryption.
    fn signed(&self, sender: &Sender) -> String {
        let token = b64().encode(self.der(&self.client));
        let created = sender.created.format(&Rfc3339).unwrap();
        let expires = sender.expires.format(&Rfc3339).unwrap();
        let unsigned = format!(
            r#"<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Header><wsse:Security xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}" soap:mustUnderstand="1"><wsse:BinarySecurityToken EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary" ValueType="{X509V3}" wsu:Id="bst">{token}</wsse:BinarySecurityToken><wsu:Timestamp wsu:Id="ts"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>SIGNATURE</wsse:Security></soap:Header><soap:Body xmlns:wsu="{WSU_NS}" wsu:Id="body">{CONTENT}</soap:Body></soap:Envelope>"#
        );
        let document = roxmltree::Document::parse(&unsigned).unwrap();
        let transform = if sender.prefix_list {
            format!(
                r#"<ds:Transform Algorithm="{EXC_C14N}"><ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="soap"/></ds:Transform>"#
            )
        } else {
            format!(r#"<ds:Transform Algorithm="{EXC_C14N}"/>"#)
        };
        let references: String = sender
            .signed
            .iter()
            .map(|id| {
                let element = document
                    .descendants()
                    .find(|node| node.attribute((WSU_NS, "Id")) == Some(id))
                    .unwrap();
                let digest = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    c14n::exclusive(element).as_bytes(),
                );
                format!(
                    r##"<ds:Reference URI="#{id}"><ds:Transforms>{transform}</ds:Transforms><ds:DigestMethod Algorithm="{SHA1}"/><ds:DigestValue>{}</ds:DigestValue></ds:Reference>"##,
                    b64().encode(digest.as_ref())
                )
            })
            .collect();
        let signed_info = format!(
            r#"<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA1}"/>{references}</ds:SignedInfo>"#
        );
        let key_info = format!(
            r##"<ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#{}" ValueType="{X509V3}"/></wsse:SecurityTokenReference></ds:KeyInfo>"##,
            sender.key_info_points_at
        );
        let with_info = unsigned.replace(
            "SIGNATURE",
            &format!(r#"<ds:Signature xmlns:ds="{DSIG_NS}">{signed_info}<ds:SignatureValue>VALUE</ds:SignatureValue>{key_info}</ds:Signature>"#),
        );
        let document = roxmltree::Document::parse(&with_info).unwrap();
        let signed_info = document
            .descendants()
            .find(|node| node.has_tag_name((DSIG_NS, "SignedInfo")))
            .unwrap();
        let canonical = self.dir.path().join("signed-info.xml");
        std::fs::write(&canonical, c14n::exclusive(signed_info)).unwrap();
        let key = self.client.with_extension("key");
        let value = openssl(
            self.dir.path(),
            &[
                "dgst",
                "-sha1",
                "-sign",
                key.to_str().unwrap(),
                canonical.to_str().unwrap(),
            ],
        );
        with_info.replace("VALUE", &b64().encode(value))
    }

    /// `message` with its Body content encrypted for `recipient`, as the sender sends it.
    fn encrypted(&self, message: &str, recipient: &Path) -> String {
        let dir = self.dir.path();
        let session_key: Vec<u8> = (0..24u8)
            .map(|i| i.wrapping_mul(29).wrapping_add(3))
            .collect();
        let iv = [3u8, 1, 4, 1, 5, 9, 2, 6];
        let document = roxmltree::Document::parse(message).unwrap();
        let body = document
            .root_element()
            .children()
            .find(|node| node.has_tag_name((SOAP11_NS, "Body")))
            .unwrap();
        let content: String = body
            .children()
            .map(|child| &message[child.range()])
            .collect();
        let (wrapped, cipher) =
            encrypted_for(dir, recipient, &session_key, &iv, content.as_bytes());
        let ski = b64().encode(subject_key_identifier(&self.der(recipient)));
        let encrypted_key = format!(
            r##"<xenc:EncryptedKey xmlns:xenc="{x}" Id="EK-1"><xenc:EncryptionMethod Algorithm="{rsa15}"/><ds:KeyInfo xmlns:ds="{DSIG_NS}"><wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="{skiv}">{ski}</wsse:KeyIdentifier></wsse:SecurityTokenReference></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData><xenc:ReferenceList><xenc:DataReference URI="#ED-1"/></xenc:ReferenceList></xenc:EncryptedKey>"##,
            x = xenc::XENC_NS,
            rsa15 = xenc::RSA_1_5,
            skiv = xenc::SUBJECT_KEY_IDENTIFIER,
            wrapped = b64().encode(wrapped),
        );
        let encrypted_data = format!(
            r#"<xenc:EncryptedData xmlns:xenc="{x}" Id="ED-1" Type="{content_type}"><xenc:EncryptionMethod Algorithm="{tdes}"/><xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
            x = xenc::XENC_NS,
            content_type = xenc::CONTENT,
            tdes = xenc::TRIPLEDES_CBC,
            cipher = b64().encode(cipher),
        );
        let security_open = message.find("soap:mustUnderstand=\"1\">").unwrap()
            + "soap:mustUnderstand=\"1\">".len();
        let mut out = message.to_owned();
        out.replace_range(
            body.children().next().unwrap().range().start..body.last_child().unwrap().range().end,
            &encrypted_data,
        );
        out.insert_str(security_open, &encrypted_key);
        out
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

#[test]
fn a_message_signed_and_encrypted_by_openssl_opens_to_its_body_and_signer() {
    let fixture = Fixture::new();
    let now = now();
    let message = fixture.encrypted(&fixture.signed(&Sender::at(now)), &fixture.server);
    let opened = wsse::open(
        &message,
        now,
        &Policy::default(),
        &fixture.recipient(&fixture.server),
    )
    .unwrap();
    assert_eq!(opened.body_content(), CONTENT);
    assert_eq!(opened.signer_certificate, fixture.der(&fixture.client));
    assert_eq!(
        (opened.created, opened.expires),
        (now, now + time::Duration::seconds(60))
    );

    // For someone else: the one generic answer.
    assert_eq!(
        wsse::open(
            &message,
            now,
            &Policy::default(),
            &fixture.recipient(&fixture.client)
        )
        .unwrap_err(),
        WsseError::Encryption(XencError::Undecryptable)
    );
    // Changed in transit (inside the encrypted Body): not what was signed.
    let signed = fixture.signed(&Sender::at(now));
    let changed = fixture.encrypted(&signed.replace("T-1", "T-2"), &fixture.server);
    assert_eq!(
        wsse::open(
            &changed,
            now,
            &Policy::default(),
            &fixture.recipient(&fixture.server)
        )
        .unwrap_err(),
        WsseError::Signature(DsigError::DigestMismatch("body".into()))
    );
}

#[test]
fn the_timestamp_must_be_current_and_at_most_the_policy_window_wide() {
    let fixture = Fixture::new();
    let now = now();
    let recipient = fixture.recipient(&fixture.server);
    let minute = time::Duration::seconds(60);
    let open = |sender: Sender| {
        let message = fixture.encrypted(&fixture.signed(&sender), &fixture.server);
        wsse::open(&message, now, &Policy::default(), &recipient)
    };
    let expired = Sender {
        created: now - 3 * minute,
        expires: now - 2 * minute,
        ..Sender::at(now)
    };
    assert!(
        matches!(open(expired), Err(WsseError::Timestamp(reason)) if reason.starts_with("expired"))
    );
    let future = Sender {
        created: now + 2 * minute,
        expires: now + 3 * minute,
        ..Sender::at(now)
    };
    assert!(matches!(open(future), Err(WsseError::Timestamp(reason)) if reason.contains("future")));
    let wide = Sender {
        expires: now + 5 * minute,
        ..Sender::at(now)
    };
    assert!(
        matches!(open(wide), Err(WsseError::Timestamp(reason)) if reason.contains("spans 300 s"))
    );
    // Within the clock skew either way is fine.
    let skewed = Sender {
        created: now + time::Duration::seconds(20),
        expires: now + time::Duration::seconds(80),
        ..Sender::at(now)
    };
    open(skewed).unwrap();
}

#[test]
fn the_signature_must_cover_body_timestamp_and_token_and_be_the_tokens() {
    let fixture = Fixture::new();
    let now = now();
    let recipient = fixture.recipient(&fixture.server);
    let open = |message: &str| {
        wsse::open(
            &fixture.encrypted(message, &fixture.server),
            now,
            &Policy::default(),
            &recipient,
        )
    };
    for (signed, missing) in [
        (vec!["ts", "bst"], "Body"),
        (vec!["body", "bst"], "Timestamp"),
        (vec!["ts", "body"], "token"),
    ] {
        let sender = Sender {
            signed,
            ..Sender::at(now)
        };
        assert_eq!(
            open(&fixture.signed(&sender)).unwrap_err(),
            WsseError::NotSigned(missing)
        );
    }
    let elsewhere = Sender {
        key_info_points_at: "ts",
        ..Sender::at(now)
    };
    assert_eq!(
        open(&fixture.signed(&elsewhere)).unwrap_err(),
        WsseError::SignerNotToken
    );
    let prefix_list = Sender {
        prefix_list: true,
        ..Sender::at(now)
    };
    assert_eq!(
        open(&fixture.signed(&prefix_list)).unwrap_err(),
        WsseError::Signature(DsigError::PrefixList)
    );
}

#[test]
fn a_signed_body_moved_aside_for_a_forged_one_is_refused() {
    let fixture = Fixture::new();
    let now = now();
    let recipient = fixture.recipient(&fixture.server);
    let signed = fixture.signed(&Sender::at(now));
    let body_start = signed.find("<soap:Body").unwrap();
    let body_end = signed.find("</soap:Envelope>").unwrap();
    let original_body = &signed[body_start..body_end];
    let forged = CONTENT.replace("T-1", "FORGED");

    // The signed Body inside a wrapper in the Security header; a forged Body in its place.
    let wrapped = signed[..body_start].replace(
        "</wsse:Security>",
        &format!("<wsse:Wrapper>{original_body}</wsse:Wrapper></wsse:Security>"),
    ) + &format!("<soap:Body>{forged}</soap:Body></soap:Envelope>");
    let message = fixture.encrypted(&wrapped, &fixture.server);
    assert_eq!(
        wsse::open(&message, now, &Policy::default(), &recipient).unwrap_err(),
        WsseError::NotSigned("Body")
    );

    // The same forged Body claiming the signed one's id: two elements with one id.
    let claimed = signed[..body_start].replace(
        "</wsse:Security>",
        &format!("<wsse:Wrapper>{original_body}</wsse:Wrapper></wsse:Security>"),
    ) + &format!(
        "<soap:Body xmlns:wsu=\"{WSU_NS}\" wsu:Id=\"body\">{forged}</soap:Body></soap:Envelope>"
    );
    let message = fixture.encrypted(&claimed, &fixture.server);
    assert_eq!(
        wsse::open(&message, now, &Policy::default(), &recipient).unwrap_err(),
        WsseError::Signature(DsigError::DuplicateId("body".into()))
    );

    // A second Security header, or a second Body.
    let second_header = signed.replace(
        "</soap:Header>",
        &format!("<wsse:Security xmlns:wsse=\"{WSSE_NS}\"/></soap:Header>"),
    );
    assert_eq!(
        wsse::open(
            &fixture.encrypted(&second_header, &fixture.server),
            now,
            &Policy::default(),
            &recipient
        )
        .unwrap_err(),
        WsseError::SecurityHeaders
    );
    let second_body = signed.replace("</soap:Envelope>", "<soap:Body/></soap:Envelope>");
    assert!(matches!(
        wsse::open(
            &fixture.encrypted(&second_body, &fixture.server),
            now,
            &Policy::default(),
            &recipient
        ),
        Err(WsseError::NotSoap(_))
    ));
}
