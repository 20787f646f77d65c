//! A decrypted EMCS request of arbitrary bytes, read as the gateway reads it (routing by the
//! Body's `_I` element, `HovedOplysninger`, the trader, the IE message, its schema and its
//! trader rule) and answered by the simulated EMCS: every step refuses or answers, never
//! panics, and each answer is XML that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftgw_emcs::request::Request;
use mftgw_emcs::simulator::Emcs;
use mftgw_wssec::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = xml::parse_bytes(data, &xml::Limits::default()) else {
        return;
    };
    let Ok(request) = Request::in_envelope(&document, None) else {
        return;
    };
    let Ok(header) = request.hoved_oplysninger() else {
        return;
    };
    let Ok(trader) = request.trader() else {
        return;
    };
    let _ = request.check_message_format();
    let _ = request.check_message_trader(&trader);
    let at = time::OffsetDateTime::UNIX_EPOCH;
    let mut emcs = Emcs::default();
    for _ in 0..2 {
        let answer = emcs.respond(&request, &header, &trader.excise_number, at);
        assert!(roxmltree::Document::parse(&answer).is_ok(), "{answer}");
    }
});
