//! The OCES crate's integration tests, in one binary: identities and certificate facts of
//! the test PKI's certificates, and real handshakes against the trust store.

mod testpki_identities;
mod trust_handshakes;
