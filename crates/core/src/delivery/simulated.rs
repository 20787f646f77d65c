//! A simulated backend inside the gateway, whose behaviour is set per service in the config,
//! for demos and tests.

use crate::BoxFuture;
use mftgw_domain::Transaction;
use mftgw_domain::errors::ErrorEntry;
use mftgw_store::OutContent;
use serde::{Deserialize, Serialize};

use super::connector::{Answer, Connector, DeliveryError, DeliveryFailure, Parcel};

/// How a simulated backend treats every file it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Takes the file and accepts it: 1, 2.
    Accept,
    /// Takes, accepts and answers it: 1, 2, a response file and 3.
    Answer,
    /// Takes it, then rejects it with this error: 1, 0.
    Reject(ErrorEntry),
    /// Is unreachable: the file waits in the outbox.
    Down,
}

pub struct Simulated {
    behaviour: Behaviour,
}

impl Simulated {
    pub fn new(behaviour: Behaviour) -> Self {
        Self { behaviour }
    }

    fn response(&self, transaction: &Transaction) -> Answer {
        Answer::Respond {
            name: format!(
                "{}_{}_response.txt",
                transaction.service, transaction.ftp_transaction_id
            ),
            content: OutContent::Inline(
                format!(
                    "Simulated response of {} to {} ({} bytes, SHA-256 {})\r\n",
                    transaction.service,
                    transaction.skat_transaction_id,
                    transaction.size,
                    transaction.sha256
                )
                .into_bytes(),
            ),
        }
    }
}

impl Connector for Simulated {
    fn deliver<'a>(&'a self, _parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            match self.behaviour {
                Behaviour::Down => Err(DeliveryError::new(
                    DeliveryFailure::Unavailable,
                    "the simulated backend is down",
                )),
                _ => Ok(()),
            }
        })
    }

    fn reads_the_body(&self) -> bool {
        false
    }

    fn answers_on_its_own(&self) -> bool {
        self.behaviour != Behaviour::Down
    }

    fn answers(&self, transaction: &Transaction) -> Vec<Answer> {
        match &self.behaviour {
            Behaviour::Accept => vec![Answer::Accept],
            Behaviour::Answer => vec![Answer::Accept, self.response(transaction)],
            Behaviour::Reject(error) => vec![Answer::Reject(error.clone())],
            Behaviour::Down => Vec::new(),
        }
    }
}
