//! The built-in heartbeat backend (SPEC §5): it takes every upload to the heartbeat service,
//! accepts it and answers with the heartbeat response, so that a client can check the whole
//! way through the gateway without a real backend.

use mftgw_domain::Transaction;
use mftgw_domain::transaction::{heartbeat_response_body, heartbeat_response_name};
use mftgw_store::OutContent;
use time::OffsetDateTime;

use super::connector::{Answer, Connector, DeliveryError, Parcel};
use crate::BoxFuture;

pub struct Heartbeat;

impl Connector for Heartbeat {
    fn deliver<'a>(&'a self, _parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Ok(()) })
    }

    fn reads_the_body(&self) -> bool {
        false
    }

    fn answers_on_its_own(&self) -> bool {
        true
    }

    fn answers(&self, transaction: &Transaction) -> Vec<Answer> {
        let response = Answer::Respond {
            name: heartbeat_response_name(transaction.ftp_transaction_id.as_str()),
            content: OutContent::Inline(
                heartbeat_response_body(transaction, OffsetDateTime::now_utc()).into_bytes(),
            ),
        };
        vec![Answer::Accept, response]
    }
}
