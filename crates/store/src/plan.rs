//! The rules every store implementation applies the same way, as pure functions over what
//! it read inside its transaction: whether a certificate may be registered and what that
//! does, how a batch of steps splits into set-wise state changes, and which `/out` files of
//! a batch survive (the last of each name). Implementations only read and write.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

use mftgw_domain::{Cvr, User};

use crate::{Advance, CertificateRegistration, StoreError};

/// What registering a certificate does, given what the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistrationPlan {
    /// The certificate already is the user's current one: nothing changes.
    AlreadyCurrent(User),
    /// A new user with this certificate.
    CreateUser,
    /// The certificate becomes `User`'s current one, replacing the one they had.
    Renew(User),
}

/// Who a fingerprint is registered to, and whether a renewal replaced it (when, as the
/// store writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisteredTo {
    pub(crate) owner: mftgw_domain::Username,
    pub(crate) replaced_at: Option<String>,
}

/// Decides a registration: a certificate belongs to one user for good, a replaced one never
/// comes back, and a user's certificates all name the same CVR and account.
pub(crate) fn registration_plan(
    registration: &CertificateRegistration,
    user: Option<User>,
    certificate: Option<RegisteredTo>,
) -> Result<RegistrationPlan, StoreError> {
    if let Some(RegisteredTo { owner, replaced_at }) = certificate {
        return match (user, replaced_at) {
            (Some(user), None) if user.username == owner => {
                Ok(RegistrationPlan::AlreadyCurrent(user))
            }
            (Some(user), Some(replaced_at)) if user.username == owner => {
                Err(StoreError::Conflict(format!(
                    "certificate {} of {owner} was replaced at {replaced_at}; only a newer certificate can be registered",
                    registration.fingerprint
                )))
            }
            _ => Err(StoreError::Conflict(format!(
                "certificate {} is registered to {owner}, not {}",
                registration.fingerprint, registration.username
            ))),
        };
    }
    match user {
        None => Ok(RegistrationPlan::CreateUser),
        Some(user) if (&user.cvr, &user.account) != (&registration.cvr, &registration.account) => {
            let company = |cvr: &Option<Cvr>| match cvr {
                Some(cvr) => format!("CVR {cvr}"),
                None => "a person".to_owned(),
            };
            Err(StoreError::Conflict(format!(
                "user {} is {} account {}, but the certificate says {} account {}",
                user.username,
                company(&user.cvr),
                user.account,
                company(&registration.cvr),
                registration.account
            )))
        }
        Some(user) => Ok(RegistrationPlan::Renew(user)),
    }
}

/// Splits `steps` into runs that one conditional update each can apply, in order: the same
/// transition, distinct transactions (so that a step may build on an earlier one of its
/// transaction), at most `max_rows` steps.
pub(crate) fn transition_runs(steps: &[Advance], max_rows: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=steps.len() {
        let run = &steps[start..end];
        let ends = steps.get(end).is_none_or(|next| {
            (next.from, next.to) != (run[0].from, run[0].to)
                || run.len() == max_rows
                || run
                    .iter()
                    .any(|step| step.transaction_id == next.transaction_id)
        });
        if ends {
            runs.push(start..end);
            start = end;
        }
    }
    runs
}

/// Of `files` in order, the last of each `key` (in its own place in the order), and the
/// earlier ones it supersedes: a later status file replaces an earlier one of its name in
/// the same commit.
pub(crate) fn last_of_each<F, K: Hash + Eq>(
    files: Vec<F>,
    key: impl Fn(&F) -> K,
) -> (Vec<F>, Vec<F>) {
    let mut position: HashMap<K, usize> = HashMap::with_capacity(files.len());
    let mut kept: Vec<Option<F>> = Vec::with_capacity(files.len());
    let mut superseded = Vec::new();
    for file in files {
        if let Some(earlier) = position.insert(key(&file), kept.len())
            && let Some(earlier) = kept[earlier].take()
        {
            superseded.push(earlier);
        }
        kept.push(Some(file));
    }
    (kept.into_iter().flatten().collect(), superseded)
}

#[cfg(test)]
mod tests {
    use mftgw_domain::status::StatusCode;
    use mftgw_domain::{AccountId, TransactionState, UserState};
    use time::macros::datetime;

    use super::*;

    fn registration() -> CertificateRegistration {
        CertificateRegistration {
            username: "CVR_12345678_UID_1".parse().unwrap(),
            cvr: Some(Cvr::parse("12345678").unwrap()),
            account: AccountId::parse("UID_1").unwrap(),
            kind: "moces".into(),
            fingerprint: "aa".into(),
            subject: "CN=Test".into(),
            serial_hex: "01".into(),
            not_after: datetime!(2030-01-01 00:00 UTC),
            cert_der: Vec::new(),
            new_password_hash: "hash".into(),
            new_password_sealed: "sealed".into(),
            activate_at: datetime!(2025-01-01 00:00 UTC),
            rotate_password: false,
            roles: Vec::new(),
        }
    }

    fn user(username: &str, account: &str) -> User {
        User {
            id: 7,
            username: username.parse().unwrap(),
            cvr: Some(Cvr::parse("12345678").unwrap()),
            account: AccountId::parse(account).unwrap(),
            kind: "moces".into(),
            state: UserState::Active,
            activate_at: None,
            created_at: datetime!(2025-01-01 00:00 UTC),
        }
    }

    fn registered_to(owner: &str, replaced_at: Option<&str>) -> Option<RegisteredTo> {
        Some(RegisteredTo {
            owner: owner.parse().unwrap(),
            replaced_at: replaced_at.map(str::to_string),
        })
    }

    #[test]
    fn a_registration_creates_renews_repeats_or_conflicts() {
        let new = registration();
        let same = || Some(user("CVR_12345678_UID_1", "UID_1"));
        assert_eq!(
            registration_plan(&new, None, None).unwrap(),
            RegistrationPlan::CreateUser
        );
        assert_eq!(
            registration_plan(&new, same(), None).unwrap(),
            RegistrationPlan::Renew(same().unwrap())
        );
        assert_eq!(
            registration_plan(&new, same(), registered_to("CVR_12345678_UID_1", None)).unwrap(),
            RegistrationPlan::AlreadyCurrent(same().unwrap())
        );
        let conflicts = [
            // Replaced: it never comes back.
            (same(), registered_to("CVR_12345678_UID_1", Some("2025"))),
            // Someone else's.
            (same(), registered_to("CVR_12345678_UID_2", None)),
            (None, registered_to("CVR_12345678_UID_2", None)),
            // The user's account differs from what the certificate says.
            (Some(user("CVR_12345678_UID_1", "UID_9")), None),
        ];
        for (user, certificate) in conflicts {
            let planned = registration_plan(&new, user.clone(), certificate.clone());
            assert!(
                matches!(planned, Err(StoreError::Conflict(_))),
                "{user:?} {certificate:?}: {planned:?}"
            );
        }
    }

    fn step(transaction_id: i64, from: TransactionState, to: TransactionState) -> Advance {
        Advance {
            transaction_id,
            from,
            to,
            status: StatusCode::Delivered,
            at: datetime!(2025-01-01 00:00 UTC),
            files: Vec::new(),
            finishes_work: false,
            lease: None,
        }
    }

    #[test]
    fn runs_split_at_a_new_transition_a_repeated_transaction_and_the_row_limit() {
        use TransactionState::{Accepted, Delivered, Received};
        let steps = [
            step(1, Received, Delivered),
            step(2, Received, Delivered),
            step(1, Delivered, Accepted),
            step(3, Delivered, Accepted),
            step(3, Delivered, Accepted),
            step(4, Delivered, Accepted),
            step(5, Delivered, Accepted),
        ];
        assert_eq!(transition_runs(&steps, 2), [0..2, 2..4, 4..6, 6..7]);
        assert_eq!(transition_runs(&steps, 200), [0..2, 2..4, 4..7]);
        assert!(transition_runs(&[], 200).is_empty());
    }

    #[test]
    fn the_last_file_of_each_name_wins_in_its_own_place() {
        let files = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let (kept, superseded) = last_of_each(files, |file| file.0);
        assert_eq!(kept, [("a", 3), ("c", 4), ("b", 5)]);
        assert_eq!(superseded, [("a", 1), ("b", 2)]);
    }
}

/// An order that concurrent writers must keep. A backend with several writers serialises
/// the writers of the same order (PostgreSQL: a transaction-level advisory lock, held until
/// commit); a backend with one writer keeps every such order by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serialized<'a> {
    /// Registrations and their jobs: what a registration reads decides what it writes.
    Registrations,
    /// Security changes: ids in commit order, so that a follower misses none.
    SecurityChanges,
    /// Audit events: ids in commit order, so that a follower misses none.
    Audit,
    /// Claims and postponements of work: a claim sees every postponement before it, so that
    /// delivery stays FIFO per (user, service).
    Claims,
    /// The uploads of one user to one service: their work gets ids in commit order.
    Uploads { user_id: i64, service: &'a str },
    /// The files of one mailbox: a name replaced by one writer at a time, ids in commit order.
    Mailbox(i64),
}
