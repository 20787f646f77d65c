//! The EMCS backend behind the core's delivery abstraction: a [`Connector`] that hands a
//! committed call to the simulated EMCS system ([`mftgw_emcs::simulator`], one per gateway
//! process, its movements and waiting messages in memory) and answers with its `_O` element. EMCS answers a call while it is made, so the answer is computed at
//! delivery and kept (by SKATTransactionId) until the worker applies it; a worker that dies in
//! between leaves the call to the adapter's deadline, which rejects it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use mftgw_core::BoxFuture;
use mftgw_core::delivery::{Answer, Connector, DeliveryError, DeliveryFailure, Parcel};
use mftgw_core::transactions::call_answer_name;
use mftgw_domain::{SkatTransactionId, Transaction};
use mftgw_emcs::request::Request;
use mftgw_emcs::simulator::Emcs;
use mftgw_store::OutContent;
use mftgw_wssec::xml::{self, Limits};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

/// Answers kept for the worker at most; older ones are dropped (their callers have long
/// given up).
const KEPT_ANSWERS: usize = 10_000;

/// Whether the simulated EMCS system takes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Up,
    /// Out of service: every call waits until its caller's deadline and gets error 2000.
    Down,
}

pub struct SimulatedEmcs {
    availability: Availability,
    emcs: Mutex<Emcs>,
    answers: Mutex<Answers>,
}

#[derive(Default)]
struct Answers {
    by_transaction: HashMap<SkatTransactionId, Vec<u8>>,
    order: VecDeque<SkatTransactionId>,
}

impl SimulatedEmcs {
    pub fn new(availability: Availability) -> Self {
        Self {
            availability,
            emcs: Mutex::default(),
            answers: Mutex::default(),
        }
    }

    fn keep(&self, transaction: &SkatTransactionId, answer: Vec<u8>) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if answers
            .by_transaction
            .insert(transaction.clone(), answer)
            .is_none()
        {
            answers.order.push_back(transaction.clone());
        }
        while answers.order.len() > KEPT_ANSWERS {
            if let Some(oldest) = answers.order.pop_front() {
                answers.by_transaction.remove(&oldest);
            }
        }
    }

    /// The `_O` element EMCS answers the call `envelope` (the decrypted request) with at
    /// `at`.
    fn respond(&self, envelope: &str, at: OffsetDateTime) -> Result<String, String> {
        let document =
            xml::parse(envelope, &Limits::default()).map_err(|error| error.to_string())?;
        let request = Request::in_envelope(&document, None).map_err(|error| error.to_string())?;
        let header = request
            .hoved_oplysninger()
            .map_err(|error| error.to_string())?;
        let caller = request
            .trader()
            .map_err(|error| error.text().to_owned())?
            .excise_number;
        let mut emcs = self.emcs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(emcs.respond(&request, &header, &caller, at))
    }
}

impl Connector for SimulatedEmcs {
    fn deliver<'a>(&'a self, parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            if self.availability == Availability::Down {
                return Err(DeliveryError::new(
                    DeliveryFailure::Unavailable,
                    "the simulated EMCS system is out of service",
                ));
            }
            let mut envelope = String::new();
            let mut body = parcel.body;
            body.read_to_string(&mut envelope).await.map_err(|error| {
                DeliveryError::new(
                    DeliveryFailure::Gateway,
                    format!("reading the call: {error}"),
                )
            })?;
            let answer = self
                .respond(&envelope, OffsetDateTime::now_utc())
                .map_err(|detail| DeliveryError::new(DeliveryFailure::Refused, detail))?;
            self.keep(&parcel.transaction.skat_transaction_id, answer.into_bytes());
            Ok(())
        })
    }

    fn answers_on_its_own(&self) -> bool {
        self.availability == Availability::Up
    }

    fn answers(&self, transaction: &Transaction) -> Vec<Answer> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        match answers.by_transaction.get(&transaction.skat_transaction_id) {
            Some(answer) => vec![
                Answer::Accept,
                Answer::Respond {
                    name: call_answer_name(&transaction.skat_transaction_id),
                    content: OutContent::Inline(answer.clone()),
                },
            ],
            None => Vec::new(),
        }
    }
}
