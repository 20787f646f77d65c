//! The domain's integration tests, in one binary: status files against the client guide's
//! examples, and as XML for any input.

mod status_golden;
mod status_xml_property;
