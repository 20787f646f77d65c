//! TLS is up, nobody is logged in: `USER`/`PASS` against the backend, plus `PBSZ`/`PROT` and the
//! harmless commands. Every refusal answers the same `530`; the backend audits the reason. A
//! backend that cannot decide gets the client `421`, and the connection closes.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::watch;

use super::authenticated::{Authenticated, LoggedIn};
use super::pre_tls::Secure;
use super::{
    Deadline, End, Incoming, Peer, Protection, Shared, close, next_command, stateless_reply,
};
use crate::backend::{Backend, ClientContext, EngineEvent, LoginDenied, Session};
use crate::command::Command;
use crate::control::ControlChannel;
use crate::reply::Reply;

pub(super) async fn authenticate<'a, B: Backend>(
    shared: &'a std::sync::Arc<Shared<B>>,
    secure: Secure,
    peer: Peer,
    shutdown: &'a mut watch::Receiver<bool>,
) -> Option<Authenticated<'a, B>> {
    let Secure { stream, verified } = secure;
    let (certificate, intermediates) = stream.get_ref().1.peer_certificates()?.split_first()?;
    let client = ClientContext {
        connection_id: peer.connection_id,
        peer: peer.addr,
        certificate: certificate.clone(),
        intermediates: intermediates.to_vec(),
    };
    let config = &shared.config;
    let mut control = ControlChannel::new(stream, config.max_line_bytes, config.timeouts.write);
    let mut queued = VecDeque::new();
    let mut protection = Protection::default();
    let mut username: Option<String> = None;
    let mut failures = 0;
    // Unauthenticated connections are cheap to open and cost a slot each: they get a fixed
    // time to log in, however busy they keep the connection.
    let login_deadline = Deadline::after(config.timeouts.login);

    loop {
        let command = match next_command(
            &mut control,
            &mut queued,
            login_deadline.remaining().min(config.timeouts.idle),
            shutdown,
        )
        .await
        {
            Incoming::Command(command) => command,
            Incoming::Invalid(reply) => {
                control.reply(&reply).await.ok()?;
                continue;
            }
            Incoming::End(End::IdleTimeout) if login_deadline.remaining().is_zero() => {
                close(&mut control, End::LoginTimeout).await;
                return None;
            }
            Incoming::End(end) => {
                close(&mut control, end).await;
                return None;
            }
        };
        let reply = match command {
            Command::User(name) => {
                let reply = Reply::new(331, format!("Password required for {name}"));
                username = Some(name);
                reply
            }
            Command::Pass(password) => {
                let Some(name) = username.take() else {
                    control
                        .reply(&Reply::new(503, "Send USER before PASS"))
                        .await
                        .ok()?;
                    continue;
                };
                match log_in(shared, &client, &name, &password.0).await {
                    Ok((session, user_slot)) => {
                        control
                            .reply(&Reply::new(230, "User logged in, proceed"))
                            .await
                            .ok()?;
                        let session = LoggedIn {
                            control,
                            client,
                            session,
                            user_slot,
                            protection,
                            verified,
                        };
                        return Some(Authenticated::new(shared, session, shutdown));
                    }
                    Err(LoginDenied::Unavailable) => {
                        let _ = control
                            .reply(&Reply::new(421, "Service not available, try again later"))
                            .await;
                        close(&mut control, End::Closed).await;
                        return None;
                    }
                    Err(LoginDenied::Refused { .. }) => {
                        failures += 1;
                        control
                            .reply(&Reply::new(530, "Login incorrect"))
                            .await
                            .ok()?;
                        if failures >= config.max_failed_logins_per_connection {
                            close(&mut control, End::Closed).await;
                            return None;
                        }
                        continue;
                    }
                }
            }
            Command::Quit => {
                close(&mut control, End::Quit).await;
                return None;
            }
            Command::Auth(_) => Reply::new(503, "TLS is already active"),
            Command::Ccc => Reply::new(534, "CCC refused: the control channel stays encrypted"),
            Command::Syst => Reply::new(215, "UNIX Type: L8"),
            command => match protection.handle(&command) {
                Some(reply) => reply,
                None => match command {
                    Command::Feat | Command::Noop | Command::Help | Command::Opts(_) => {
                        stateless_reply(&command).expect("fixed reply")
                    }
                    _ => Reply::new(530, "Please log in with USER and PASS"),
                },
            },
        };
        control.reply(&reply).await.ok()?;
    }
}

/// Asks the backend; applies its throttle delay before the caller answers `530`. The per-user
/// session slot is taken only once the login succeeded, so that nobody but the user can use
/// up the user's slots.
async fn log_in<B: Backend>(
    shared: &Shared<B>,
    client: &ClientContext,
    username: &str,
    password: &str,
) -> Result<(B::Session, crate::limits::KeyedSlot<String>), LoginDenied> {
    let session = match shared.backend.login(client, username, password).await {
        Ok(session) => session,
        Err(LoginDenied::Refused { delay }) => {
            tokio::time::sleep(delay).await;
            return Err(LoginDenied::Refused { delay });
        }
        Err(LoginDenied::Unavailable) => return Err(LoginDenied::Unavailable),
    };
    // The backend's identity, not what the client typed: one user has one set of slots
    // under whatever name it logs in with.
    let Some(user_slot) = shared.limiter.admit_user(session.username()) else {
        shared.backend.on_event(EngineEvent::LoginRefused {
            connection_id: client.connection_id,
            peer: client.peer,
            username: session.username(),
            reason: "too_many_sessions_for_user",
            certificate: &client.certificate,
        });
        return Err(LoginDenied::Refused {
            delay: Duration::ZERO,
        });
    };
    Ok((session, user_slot))
}
