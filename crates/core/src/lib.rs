//! `mftgw-core`: the one place where uploads, deliveries, backend answers and operator
//! actions meet. Front ends (the FTPS backend, the HTTPS API, the Certificate Portal) are
//! adapters that call this crate; it speaks transactions, steps and audit events, and knows no
//! wire format: no FTP reply, no HTTP status, no template.

#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod delivery;
pub mod files;
pub mod keys;
pub mod periodic;
pub mod portal;
pub mod projection;
pub mod roles;
pub mod spacing;
pub mod telemetry;
pub mod throttle;
pub mod transactions;
pub mod users;

/// A boxed future, for the object-safe traits adapters implement (connectors, role feeds).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
