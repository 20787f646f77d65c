//! SOAP 1.1 faults: the answer to a request that cannot be answered in the service's own
//! terms (not SOAP, not secured as the profile says, no known service). A sender error is
//! `soap:Client`, ours `soap:Server`; the text says what was wrong, and is escaped.

/// Whose fault it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request is wrong; sending it again unchanged will fail again.
    Client,
    /// The gateway could not answer; sending it again later may work.
    Server,
}

impl FaultCode {
    fn qualified(self) -> &'static str {
        match self {
            Self::Client => "soap:Client",
            Self::Server => "soap:Server",
        }
    }
}

/// A whole SOAP 1.1 envelope holding one fault.
pub fn fault(code: FaultCode, reason: &str) -> String {
    let mut escaped = String::with_capacity(reason.len());
    crate::escape_text(reason, &mut escaped);
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>{}</faultcode><faultstring xml:lang="en">{escaped}</faultstring></soap:Fault></soap:Body></soap:Envelope>"#,
        code.qualified()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_soap_11_with_its_text_escaped() {
        let text = fault(FaultCode::Client, "element <x> & \u{0} are wrong");
        let document = roxmltree::Document::parse(&text).unwrap();
        let soap = "http://schemas.xmlsoap.org/soap/envelope/";
        let fault = document
            .descendants()
            .find(|node| node.has_tag_name((soap, "Fault")))
            .unwrap();
        let child = |name: &str| {
            fault
                .children()
                .find(|node| node.has_tag_name(name))
                .and_then(|node| node.text())
                .unwrap()
                .to_owned()
        };
        assert_eq!(child("faultcode"), "soap:Client");
        assert_eq!(child("faultstring"), "element <x> & \u{fffd} are wrong");
        assert!(
            super::fault(FaultCode::Server, "x").contains("<faultcode>soap:Server</faultcode>")
        );
    }
}
