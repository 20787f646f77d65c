//! Gateway users: one per (CVR, account) pair, kept across certificate renewals, and the
//! registration lifecycle pending → active, suspended, deleted (SPEC §1).

use crate::ids::{AccountId, Cvr, Username};
use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// Where a user is in the registration lifecycle, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserState {
    /// Registered; may log in once `activate_at` has passed.
    PendingActivation,
    Active,
    /// Blocked by an operator; may be reactivated.
    Suspended,
    Deleted,
}

impl UserState {
    /// The stable name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingActivation => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

impl fmt::Display for UserState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown user state {0:?} (expected pending, active, suspended or deleted)")]
pub struct UnknownUserState(pub String);

impl FromStr for UserState {
    type Err = UnknownUserState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::PendingActivation),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deleted" => Ok(Self::Deleted),
            other => Err(UnknownUserState(other.to_owned())),
        }
    }
}

/// A gateway user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// `CVR_<cvr>_<account>` (or a person's `PID_<pid>`), derived from the certificate.
    pub username: Username,
    /// The company; `None` for a person (a personal certificate, legacy profile only).
    pub cvr: Option<Cvr>,
    /// The account part of the username: `UID_…`, `RID_…`, `UI_…` or `PID_…`.
    pub account: AccountId,
    /// The certificate profile: `voces`, `moces`, `oces3-organisation`, `oces3-employee` or
    /// `personal`.
    pub kind: String,
    pub state: UserState,
    /// When a pending user becomes active; `None` leaves activation to an operator.
    pub activate_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl User {
    /// The state that applies at `now`: a pending user whose activation time has come is
    /// active, whether or not anyone has written that back to storage yet.
    pub fn effective_state(&self, now: OffsetDateTime) -> UserState {
        match (self.state, self.activate_at) {
            (UserState::PendingActivation, Some(activate_at)) if activate_at <= now => {
                UserState::Active
            }
            (state, _) => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn user(state: UserState, activate_at: Option<OffsetDateTime>) -> User {
        User {
            id: 1,
            username: "CVR_12345678_UID_1".parse().unwrap(),
            cvr: Some("12345678".parse().unwrap()),
            account: "UID_1".parse().unwrap(),
            kind: "voces".into(),
            state,
            activate_at,
            created_at: datetime!(2025-01-01 12:00 UTC),
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in [
            UserState::PendingActivation,
            UserState::Active,
            UserState::Suspended,
            UserState::Deleted,
        ] {
            assert_eq!(state.as_str().parse::<UserState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(
            "Active".parse::<UserState>(),
            Err(UnknownUserState("Active".into()))
        );
    }

    #[test]
    fn effective_state() {
        let activation = datetime!(2025-01-01 12:15 UTC);
        let before = datetime!(2025-01-01 12:14:59 UTC);
        let cases = [
            (
                UserState::PendingActivation,
                Some(activation),
                before,
                UserState::PendingActivation,
            ),
            (
                UserState::PendingActivation,
                Some(activation),
                activation,
                UserState::Active,
            ),
            (
                UserState::PendingActivation,
                None,
                activation,
                UserState::PendingActivation,
            ),
            (
                UserState::Active,
                Some(activation),
                before,
                UserState::Active,
            ),
            (
                UserState::Suspended,
                Some(activation),
                activation,
                UserState::Suspended,
            ),
            (
                UserState::Deleted,
                Some(activation),
                activation,
                UserState::Deleted,
            ),
        ];
        for (stored, activate_at, now, expected) in cases {
            assert_eq!(
                user(stored, activate_at).effective_state(now),
                expected,
                "{stored} with activate_at {activate_at:?} at {now}"
            );
        }
    }
}
