//! WS-Security 1.0 with the X.509 token profile, for SOAP endpoints: the protocol engine of
//! the EMCS B2B gateway (and of AS4 next). It knows nothing of the gateway.
//!
//! - [`xml`]: bounded parsing (no DTD, limits on size, nodes, depth, attributes, namespaces).
//! - [`c14n`]: exclusive canonicalization without comments and without a prefix list.
//! - [`dsig`]: XML-DSig verification of references by `#id` with exactly one exclusive-c14n
//!   transform, RSA-SHA1 or RSA-SHA256, reporting the elements covered.
//! - [`xenc`]: XML-Enc decryption (RSA v1.5 key transport with implicit rejection,
//!   3DES-CBC Content), every failure one generic error.
//! - [`wsse`]: the receiving order of a WS-Security 1.0 SOAP 1.1 message (one Security
//!   header, decrypt, verify, the Body, Timestamp and token covered, the Timestamp current).
//! - [`seal`]: the sending side, signing the Body, Timestamp and token and then encrypting
//!   the Body content for the recipient.
//!
//! Written by hand on `roxmltree` and `aws-lc-rs` rather than on an XML-security library:
//! the evaluated one (`bergshamra` 0.11) accepts DTDs, does not normalize attribute values,
//! runs a reference's transforms (XSLT included) before any check, cannot decrypt either
//! layout SKAT's samples use, and its RSA v1.5 decryption has no implicit rejection. WS-Security
//! needs only one canonicalization, one signature and one encryption profile, each checked
//! strictly (which elements are signed, by which token), so the small, strict subset is the
//! safer one to own. ARCHITECTURE.md has the evaluation.

#![forbid(unsafe_code)]

pub mod c14n;
pub mod dsig;
pub mod seal;
pub mod wsse;
pub mod xenc;
pub mod xml;
