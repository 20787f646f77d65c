//! `mftgw`, the FTPS gateway: the composition root (`cli`, `config`, `serve`, `demo`, the
//! store selection) and the adapters around `mftgw-core` (the FTPS backend in `gateway`,
//! the HTTPS API, the Certificate Portal, the outbound HTTP connector and role feed, the
//! shared HTTPS accept loop). A library so that tests can use its types (the demo's
//! `demo.json` manifest, say); the `mftgw` binary is [`cli::main`].

mod admin_cli;
mod api;
pub mod cli;
mod config;
pub mod demo;
mod emcs;
mod gateway;
mod http_client;
mod https;
mod limits;
mod migrate;
mod portal;
mod secrets;
mod serve;
mod stores;
mod user_import;
