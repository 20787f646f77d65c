//! SKAT's EMCS B2B web-service gateway (seed 004) as a protocol: the 23 services, one
//! SOAP 1.1 document/literal operation each, in the namespace [`NAMESPACE`]. It knows nothing
//! of the gateway; WS-Security is `mftgw-wssec`'s.
//!
//! - [`services`]: the table of the services, written from SKAT's WSDLs (copied into `wsdl/`)
//!   and held to them by a test, with routing by URL path and by the Body's `_I` element.
//! - [`request`]: a request's `_I` element routed (and matched to the endpoint it was sent
//!   to) and its `HovedOplysninger` read.
//! - [`message`]: the embedded IE message, its type and schema version, and seed 004's checks
//!   of its trader (103 to 105).
//! - [`schema`]: the schemas of the IE messages (3.13 and 3.23) and the message's validation
//!   against them (400, or an IE917 from EMCS).
//! - [`operators`]: the register of excise operators and delegations (301, 302).
//! - [`answer`]: `HovedOplysningerSvar` with the gateway's error codes and texts.
//! - [`simulator`]: a simulated EMCS system answering like SKAT's test system.
//! - [`fault`]: SOAP 1.1 faults for what cannot be answered in a service's own terms.
//! - [`documents`]: the WSDLs and schemas, as the endpoint serves them.

#![forbid(unsafe_code)]

pub mod answer;
pub mod documents;
pub mod fault;
pub mod message;
pub mod operators;
pub mod request;
pub mod schema;
pub mod services;
pub mod simulator;

/// The namespace of every service's `_I`/`_O` structures.
pub const NAMESPACE: &str = "urn:oio:skat:emcs:ws:1.0.1";

/// `text` as XML character data: markup characters escaped, and characters XML cannot carry
/// (control characters but tab, line feed and carriage return) replaced by U+FFFD.
pub(crate) fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}
