//! The gateway's integration tests, in one binary so that they link once. Each module drives
//! the real `mftgw demo` (or `mftgw serve`) through `support`, with real clients (curl, lftp,
//! Python ftplib, Chromium), and asserts on what a user or operator would observe.

mod support;

mod admin;
mod backend_api;
mod cluster;
mod concurrency;
mod crash;
mod delivery;
mod ekapital;
mod emcs;
mod emcs_python;
mod hardening;
mod heartbeat;
mod http_delivery;
mod import;
mod interop;
mod legacy;
mod operator;
mod portal;
mod portal_browser;
mod production_stores;
mod proxy_protocol;
mod refusals;
mod roles;
mod transactions;
