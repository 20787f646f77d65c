//! Server configuration: where to listen, passive ports, timeouts and limits.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::limits::SessionLimits;
use crate::proxy::ProxyPolicy;
use crate::tls::TlsContext;

#[derive(Clone)]
pub struct ServerConfig {
    pub tls: TlsContext,
    /// Passive data ports, e.g. 36000..=39999.
    pub passive_ports: RangeInclusive<u16>,
    /// The address advertised in `227` replies; defaults to the control connection's local address.
    pub advertised_address: Option<IpAddr>,
    pub limits: SessionLimits,
    pub timeouts: Timeouts,
    /// Longest control line accepted, CRLF included.
    pub max_line_bytes: usize,
    /// Require data connections to resume the control connection's TLS session (not only to
    /// present the same certificate). Off by default: Python `ftplib` does not resume.
    pub require_session_resumption: bool,
    /// Failed `PASS` attempts after which the connection is closed.
    pub max_failed_logins_per_connection: u32,
    /// Text of the `220` greeting.
    pub greeting: String,
    /// The balancers whose connections, control and data, begin with a PROXY header.
    pub proxy: ProxyPolicy,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From TCP accept to a finished TLS handshake, control and data.
    pub tls_handshake: Duration,
    /// From a finished TLS handshake to a successful login (`421` after).
    pub login: Duration,
    /// No command for this long ends the session (`421`).
    pub idle: Duration,
    /// From a passive reply (or data command) until the client's data connection is ready.
    pub data_connect: Duration,
    /// A data transfer that moves no byte for this long is aborted.
    pub data_stall: Duration,
    /// A reply the client does not take within this time ends the session.
    pub write: Duration,
    /// On shutdown, how long running transfers may take before they are cut.
    pub shutdown_grace: Duration,
    /// From login to the end of the session (`421`), however active; a transfer running then
    /// gets `shutdown_grace` to finish.
    pub session_lifetime: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tls_handshake: Duration::from_secs(10),
            login: Duration::from_secs(60),
            idle: Duration::from_secs(600),
            data_connect: Duration::from_secs(30),
            data_stall: Duration::from_secs(120),
            write: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            session_lifetime: Duration::from_secs(12 * 60 * 60),
        }
    }
}

impl ServerConfig {
    pub fn new(tls: TlsContext) -> ServerConfig {
        ServerConfig {
            tls,
            passive_ports: 36000..=39999,
            advertised_address: None,
            limits: SessionLimits::default(),
            timeouts: Timeouts::default(),
            max_line_bytes: 2048,
            require_session_resumption: false,
            max_failed_logins_per_connection: 3,
            greeting: "mftgw FTPS gateway ready; AUTH TLS required".to_string(),
            proxy: ProxyPolicy::default(),
        }
    }
}
