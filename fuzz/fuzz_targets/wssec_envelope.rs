//! Bounded parsing, exclusive c14n of every element, and reading every `ds:Signature` of
//! arbitrary bytes: each either refuses or produces output, never panics or overflows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftgw_wssec::dsig::{DSIG_NS, Ids, Signature};
use mftgw_wssec::{c14n, xml};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = xml::parse_bytes(data, &xml::Limits::default()) else {
        return;
    };
    for element in document.descendants().filter(|node| node.is_element()) {
        let canonical = c14n::exclusive(element);
        // The canonical form is itself XML that parses.
        assert!(roxmltree::Document::parse(&canonical).is_ok(), "{canonical}");
    }
    if let Ok(ids) = Ids::of(&document) {
        for signature in document
            .descendants()
            .filter(|node| node.has_tag_name((DSIG_NS, "Signature")))
        {
            let _ = Signature::read(signature, &ids);
        }
    }
});
