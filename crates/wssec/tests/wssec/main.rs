//! The WS-Security crate against independent parties: SKAT's own sample messages, and the
//! openssl command line as signer, encryptor, decryptor and verifier. One test binary with a
//! module per area.

mod support;

mod decryption;
mod inbound;
mod outbound;
mod sample;
mod wss4j;
