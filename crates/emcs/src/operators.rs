//! Seed 004's checks of who a request acts for, against the register of excise operators:
//! the excise number must be a registered operator's (301), and the calling company must be
//! that operator or one it delegated its rights to, reporting under its own SE number (302).
//!
//! The register is the gateway's configuration (the real one is EMCS's). A company's SE
//! number is taken to be its CVR number unless the register says otherwise.

use std::collections::HashMap;

use crate::answer::GatewayError;
use crate::request::Trader;

/// One registered excise operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub excise_number: String,
    /// The SE number of the operator's own company.
    pub se_number: String,
    /// SE numbers of the companies it has delegated its rights to.
    pub delegated_to: Vec<String>,
}

/// The register: operators by excise number, and the SE numbers of companies.
#[derive(Debug, Clone, Default)]
pub struct Operators {
    by_excise_number: HashMap<String, Operator>,
    /// SE numbers of a CVR number other than the CVR number itself.
    se_numbers: HashMap<String, Vec<String>>,
}

impl Operators {
    pub fn new(
        operators: impl IntoIterator<Item = Operator>,
        se_numbers: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut register = Self::default();
        for operator in operators {
            register
                .by_excise_number
                .insert(operator.excise_number.clone(), operator);
        }
        for (cvr, se_number) in se_numbers {
            register.se_numbers.entry(cvr).or_default().push(se_number);
        }
        register
    }

    /// Whether no operator is registered (then nobody checks 301 and 302).
    pub fn is_empty(&self) -> bool {
        self.by_excise_number.is_empty()
    }

    /// Whether the company of CVR number `caller_cvr` may make a request for `trader`.
    pub fn check(&self, trader: &Trader, caller_cvr: &str) -> Result<(), GatewayError> {
        let operator = self
            .by_excise_number
            .get(&trader.excise_number)
            .ok_or(GatewayError::ExciseNumberUnknown)?;
        let callers_own = trader.se_number == caller_cvr
            || self
                .se_numbers
                .get(caller_cvr)
                .is_some_and(|numbers| numbers.contains(&trader.se_number));
        let acts_for = operator.se_number == trader.se_number
            || operator.delegated_to.contains(&trader.se_number);
        if callers_own && acts_for {
            Ok(())
        } else {
            Err(GatewayError::NotPermitted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trader(se_number: &str, excise_number: &str) -> Trader {
        Trader {
            se_number: se_number.into(),
            excise_number: excise_number.into(),
        }
    }

    #[test]
    fn an_operator_or_its_delegate_may_act_for_it_under_its_own_se_number() {
        let register = Operators::new(
            [Operator {
                excise_number: "DK82065873300".into(),
                se_number: "19552101".into(),
                delegated_to: vec!["30808460".into(), "55667788".into()],
            }],
            [("11223344".to_string(), "55667788".to_string())],
        );
        let cases = [
            (trader("19552101", "DK82065873300"), "19552101", Ok(())),
            (trader("30808460", "DK82065873300"), "30808460", Ok(())),
            // An SE number of its own that is not its CVR number.
            (trader("55667788", "DK82065873300"), "11223344", Ok(())),
            (
                trader("19552101", "DK99999999999"),
                "19552101",
                Err(GatewayError::ExciseNumberUnknown),
            ),
            // Another company's SE number.
            (
                trader("19552101", "DK82065873300"),
                "30808460",
                Err(GatewayError::NotPermitted),
            ),
            // A company the operator did not delegate to.
            (
                trader("40404040", "DK82065873300"),
                "40404040",
                Err(GatewayError::NotPermitted),
            ),
        ];
        for (trader, caller, expected) in cases {
            assert_eq!(
                register.check(&trader, caller),
                expected,
                "{trader:?} by {caller}"
            );
        }
    }
}
