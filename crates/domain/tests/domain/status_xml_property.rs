//! Every status file the gateway can render from input its edges accept is well-formed XML
//! 1.0 that reads back as what went in: the FTPTransactionID (an upload's name), the
//! backend's error text and response file name, whatever characters they hold.

use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::{StatusCode, StatusFile};
use mftgw_domain::transaction::check_transaction_id;
use mftgw_domain::xml_text::check_xml_text;
use proptest::prelude::*;
use time::macros::datetime;

const SERVICE: &str = "Manifest.MidlertidigOpbevaringOpret";

/// Mostly harmless characters, with markup, line ends, controls and non-characters mixed in.
fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        60 => any::<char>().prop_filter("not a C0 control", |c| !c.is_ascii_control()),
        30 => prop::sample::select(vec!['&', '<', '>', '"', '\'', ']', ';', '#', 'ø', 'Å']),
        10 => prop::sample::select(vec!['\r', '\n', '\t', '\u{85}', '\u{2028}']),
        1 => prop::sample::select(vec!['\0', '\u{1}', '\u{b}', '\u{1f}', '\u{7f}', '\u{fffe}', '\u{ffff}']),
    ]
}

fn awkward_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(awkward_char(), 1..max).prop_map(|chars| chars.into_iter().collect())
}

/// What a file name may hold, and now and then a non-character it may not.
fn awkward_name(max: usize) -> impl Strategy<Value = String> {
    let name_char = prop_oneof![
        60 => any::<char>().prop_filter("a plain name", |c| !c.is_control() && !matches!(c, '/' | '\\')),
        30 => prop::sample::select(vec!['&', '<', '>', '"', '\'', ']', ';', '#', 'ø', '.']),
        1 => prop::sample::select(vec!['\u{fffe}', '\u{ffff}']),
    ];
    prop::collection::vec(name_char, 1..max).prop_map(|chars| chars.into_iter().collect())
}

/// The text of the first element called `name`.
fn text_of(document: &roxmltree::Document<'_>, name: &str) -> Option<String> {
    document
        .descendants()
        .find(|node| node.has_tag_name(name))
        .map(|node| node.text().unwrap_or_default().to_owned())
}

fn rendered(name: &str, error: Option<ErrorEntry>, response: Option<String>) -> String {
    StatusFile {
        code: if error.is_some() {
            StatusCode::Error
        } else {
            StatusCode::Exposed
        },
        service: SERVICE.parse().unwrap(),
        ftp_transaction_id: name.into(),
        upload_path: Some(format!("/CVR_12345678/UID_1/{SERVICE}/{name}")),
        skat_transaction_id: Some("ci1740823200000_1_1".parse().unwrap()),
        at: datetime!(2025-03-01 10:00 UTC),
        response_file: response,
        error,
    }
    .to_xml()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_input_renders_well_formed_xml_that_reads_back(
        name in awkward_name(30),
        message in awkward_text(60),
        resolution in awkward_text(60),
        response in awkward_name(30),
    ) {
        let error = ErrorEntry { code: "BACKEND_SAYS_NO".into(), message, resolution };
        let accepted = check_transaction_id(SERVICE, &name).is_ok()
            && error.check().is_ok()
            && check_transaction_id(SERVICE, &response).is_ok();
        if !accepted {
            return Ok(());
        }

        for (error, response) in [(Some(error.clone()), None), (None, Some(response.clone()))] {
            let xml = rendered(&name, error.clone(), response.clone());
            let document = roxmltree::Document::parse(&xml)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
            prop_assert_eq!(text_of(&document, "FTPTransaktionsId"), Some(name.clone()));
            if let Some(error) = &error {
                prop_assert_eq!(text_of(&document, "error.message"), Some(error.message.clone()));
                prop_assert_eq!(text_of(&document, "error.resolution"), Some(error.resolution.clone()));
            }
            if let Some(response) = &response {
                let shown = document
                    .descendants()
                    .filter(|node| node.has_tag_name("filename"))
                    .nth(1)
                    .and_then(|node| node.text())
                    .map(str::to_owned);
                prop_assert_eq!(shown, Some(format!("/out/{response}")));
            }
        }
    }

    /// The edges are what keeps the files well-formed: text they refuse would not parse.
    #[test]
    fn what_the_edges_refuse_would_not_be_xml(
        before in awkward_text(20),
        bad in prop::sample::select(vec!['\0', '\u{1}', '\u{8}', '\u{b}', '\u{1f}', '\u{fffe}', '\u{ffff}']),
        after in awkward_text(20),
    ) {
        let text = format!("{before}{bad}{after}");
        let error = ErrorEntry { code: "X".into(), message: text.clone(), resolution: String::new() };
        prop_assert!(error.check().is_err());
        prop_assert!(check_xml_text(&text).is_err());
        prop_assert!(roxmltree::Document::parse(&rendered("ok", Some(error), None)).is_err());
    }
}
