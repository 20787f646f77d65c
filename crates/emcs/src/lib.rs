//! SKAT's EMCS B2B web-service gateway (seed 004) as a protocol: the 23 services, one
//! SOAP 1.1 document/literal operation each, in the namespace [`NAMESPACE`]. It knows nothing
//! of the gateway; WS-Security is `mftgw-wssec`'s.
//!
//! - [`services`]: the table of the services, written from SKAT's WSDLs (copied into `wsdl/`)
//!   and held to them by a test, with routing by URL path and by the Body's `_I` element.
//! - [`request`]: a request's `_I` element routed (and matched to the endpoint it was sent
//!   to) and its `HovedOplysninger` read.
//! - [`answer`]: `HovedOplysningerSvar` with the gateway's error codes and texts.
//! - [`fault`]: SOAP 1.1 faults for what cannot be answered in a service's own terms.

#![forbid(unsafe_code)]

pub mod answer;
pub mod fault;
pub mod request;
pub mod services;

/// The namespace of every service's `_I`/`_O` structures.
pub const NAMESPACE: &str = "urn:oio:skat:emcs:ws:1.0.1";
