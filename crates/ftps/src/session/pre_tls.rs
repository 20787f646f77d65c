//! Plain TCP until `AUTH TLS`: only `AUTH`, `FEAT`, `HELP`, `NOOP` and `QUIT` are answered, and
//! the whole phase, handshake included, must finish within the TLS handshake timeout.

use std::collections::VecDeque;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{Deadline, End, Incoming, Peer, Shared, close, next_command, stateless_reply};
use crate::backend::{Backend, EngineEvent};
use crate::command::{AuthMechanism, Command};
use crate::control::ControlChannel;
use crate::passive::DataStream;
use crate::proxy;
use crate::reply::Reply;
use crate::tls::{self, Verified};

/// A control connection upgraded to TLS, and when its client certificate was verified.
pub(super) struct Secure {
    pub stream: DataStream,
    pub verified: Verified,
}

/// The first byte of a TLS record carrying a handshake: a client speaking implicit TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

pub(super) async fn negotiate<B: Backend>(
    shared: &Shared<B>,
    tcp: TcpStream,
    peer: Peer,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Secure> {
    let deadline = Deadline::after(shared.config.timeouts.tls_handshake);
    let mut control = ControlChannel::new(
        tcp,
        shared.config.max_line_bytes,
        shared.config.timeouts.write,
    );
    let refuse = |reason: &str| {
        shared.backend.on_event(EngineEvent::ConnectionRefused {
            connection_id: peer.connection_id,
            peer: peer.addr,
            reason,
        })
    };

    let greeting = Reply::new(220, shared.config.greeting.clone());
    if control.reply(&greeting).await.is_err() {
        return None;
    }
    let upgrade = tokio::time::timeout(deadline.remaining(), async {
        let first_byte = tokio::select! {
            byte = control.peek_byte() => Some(byte.ok()?),
            _ = shutdown.wait_for(|stopping| *stopping) => None,
        };
        let Some(first_byte) = first_byte else {
            close(&mut control, End::Shutdown).await;
            return None;
        };
        if first_byte == Some(TLS_HANDSHAKE_RECORD) {
            refuse("implicit_tls_not_supported");
            return None;
        }
        if proxy::is_header_start(control.buffered().await.ok()?) {
            // A balancer's header from an address that is none of the balancers': whoever
            // sent it wants to be taken for someone else.
            refuse("proxy_header_from_untrusted_address");
            return None;
        }
        let mut queued = VecDeque::new();
        loop {
            let reply =
                match next_command(&mut control, &mut queued, deadline.remaining(), shutdown).await
                {
                    Incoming::Command(Command::Auth(AuthMechanism::Tls)) => {
                        if control.has_buffered_input() {
                            refuse("data_sent_before_tls_upgrade");
                            return None;
                        }
                        control
                            .reply(&Reply::new(234, "AUTH TLS successful"))
                            .await
                            .ok()?;
                        return Some(());
                    }
                    Incoming::Command(Command::Auth(AuthMechanism::Other(_))) => {
                        Reply::new(504, "Only AUTH TLS is supported")
                    }
                    Incoming::Command(Command::Quit) => {
                        close(&mut control, End::Quit).await;
                        return None;
                    }
                    Incoming::Command(
                        command @ (Command::Feat | Command::Noop | Command::Help),
                    ) => stateless_reply(&command).expect("FEAT, NOOP and HELP have a fixed reply"),
                    Incoming::Command(_) => {
                        Reply::new(530, "Secure connection required: send AUTH TLS first")
                    }
                    Incoming::Invalid(reply) => reply,
                    Incoming::End(end) => {
                        close(&mut control, end).await;
                        return None;
                    }
                };
            control.reply(&reply).await.ok()?;
        }
    });
    match upgrade.await {
        Ok(Some(())) => {}
        Ok(None) => return None,
        Err(_elapsed) => {
            refuse("tls_not_negotiated_in_time");
            return None;
        }
    }

    let remaining = deadline.remaining();
    // Taken before the handshake: the verification is at least as recent as this.
    let verified_at = shared.config.tls.verified_now();
    let verified = tls::accept(&shared.acceptor, control.into_inner(), remaining)
        .await
        .and_then(|stream| {
            let connection = stream.get_ref().1;
            if connection.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                shared.config.tls.verify_resumed_certificate(connection)?;
            }
            Ok(stream)
        });
    match verified {
        Ok(stream) => Some(Secure {
            stream,
            verified: verified_at,
        }),
        Err(failure) => {
            shared.backend.on_event(EngineEvent::TlsRefused {
                connection_id: peer.connection_id,
                peer: peer.addr,
                reason: &failure.reason,
                certificate: failure.presented.as_ref(),
            });
            None
        }
    }
}
