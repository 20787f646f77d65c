//! The OCES crate's integration tests, in one binary: identities and certificate facts of
//! the test PKI's certificates, real handshakes against the trust store, and certificates
//! verified as WS-Security tokens.

mod testpki_identities;
mod trust_handshakes;
mod trust_tokens;
