//! Checks of [`IdentityStore`]: registrations and renewals, users and their states, the
//! sealed gateway password, and the log of security changes.

use std::sync::Arc;

use mftgw_domain::{CertificateOwner, UserState};

use mftgw_domain::Username;

use super::user;
use super::{
    ACTIVATE_AT, FIRST_FINGERPRINT, FIRST_HASH, RENEWED_FINGERPRINT, USERNAME, race, registration,
    watch, with_user,
};
use crate::{CertificateRegistration, IdentityStore, PortalProfile, PortalStore, StoreError};

/// A first registration creates a pending user with its certificate and password.
pub async fn registration_creates_a_pending_user<S: IdentityStore>(store: Arc<S>) {
    let outcome = store
        .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
        .await
        .unwrap();
    assert!(outcome.created && !outcome.unchanged);
    assert_eq!(outcome.user.username, USERNAME);
    assert_eq!(
        (
            outcome.user.cvr.as_ref().map(|cvr| cvr.as_str()),
            outcome.user.account.as_str()
        ),
        (Some("12345678"), "UID_1")
    );
    assert_eq!(outcome.user.state, UserState::PendingActivation);
    assert_eq!(outcome.user.activate_at, Some(ACTIVATE_AT));

    let known = store.find_user(&user(USERNAME)).await.unwrap().unwrap();
    assert_eq!(known.user, outcome.user);
    assert_eq!(known.current_cert_fingerprint, FIRST_FINGERPRINT);
    assert_eq!(known.password_hash, FIRST_HASH);
    assert_eq!(
        store.certificate_owner(FIRST_FINGERPRINT).await.unwrap(),
        Some(CertificateOwner {
            username: user(USERNAME),
            current: true
        })
    );
    assert_eq!(
        store.find_user(&user("CVR_12345678_UID_2")).await.unwrap(),
        None
    );
    assert_eq!(store.certificate_owner("ffff").await.unwrap(), None);
}

/// A renewal keeps the password and the state; the old certificate stays, marked replaced.
pub async fn renewal_keeps_the_password_and_marks_the_old_certificate_replaced<S: IdentityStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    store
        .set_user_state(&user(USERNAME), UserState::Active)
        .await
        .unwrap();
    let outcome = store
        .register_certificate(registration(
            USERNAME,
            RENEWED_FINGERPRINT,
            "hmac-sha256:ignored",
        ))
        .await
        .unwrap();
    assert!(!outcome.created && !outcome.unchanged);
    assert_eq!(
        outcome.user.state,
        UserState::Active,
        "renewal keeps the state"
    );

    let known = store.find_user(&user(USERNAME)).await.unwrap().unwrap();
    assert_eq!(known.current_cert_fingerprint, RENEWED_FINGERPRINT);
    assert_eq!(known.password_hash, FIRST_HASH);
    let certificates = store.certificates(&user(USERNAME)).await.unwrap();
    let listed: Vec<(&str, bool)> = certificates
        .iter()
        .map(|c| (c.fingerprint.as_str(), c.replaced_at.is_some()))
        .collect();
    assert_eq!(
        listed,
        [(RENEWED_FINGERPRINT, false), (FIRST_FINGERPRINT, true)]
    );
    assert_eq!(
        store.certificate_owner(FIRST_FINGERPRINT).await.unwrap(),
        Some(CertificateOwner {
            username: user(USERNAME),
            current: false
        })
    );
    assert_eq!(
        store.certificate_owner(RENEWED_FINGERPRINT).await.unwrap(),
        Some(CertificateOwner {
            username: user(USERNAME),
            current: true
        })
    );
}

/// The current certificate registered again is reported unchanged, and nothing changes.
pub async fn registering_the_current_certificate_again_changes_nothing<S: IdentityStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let before = store.find_user(&user(USERNAME)).await.unwrap();
    let outcome = store
        .register_certificate(registration(
            USERNAME,
            FIRST_FINGERPRINT,
            "hmac-sha256:other",
        ))
        .await
        .unwrap();
    assert!(!outcome.created && outcome.unchanged);
    assert_eq!(store.find_user(&user(USERNAME)).await.unwrap(), before);
}

/// A replaced certificate, another user's certificate and a certificate naming another
/// company are conflicts, and leave everything as it was.
pub async fn conflicting_registrations_are_refused_without_changes<S: IdentityStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    store
        .register_certificate(registration(USERNAME, RENEWED_FINGERPRINT, FIRST_HASH))
        .await
        .unwrap();

    let old_again = store
        .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
        .await;
    assert!(
        matches!(&old_again, Err(StoreError::Conflict(message)) if message.contains("replaced")),
        "{old_again:?}"
    );

    let other_user = "CVR_87654321_UID_9";
    let stolen = store
        .register_certificate(registration(other_user, RENEWED_FINGERPRINT, FIRST_HASH))
        .await;
    assert!(
        matches!(&stolen, Err(StoreError::Conflict(message)) if message.contains(USERNAME)),
        "{stolen:?}"
    );
    assert_eq!(
        store.find_user(&user(other_user)).await.unwrap(),
        None,
        "the refused registration was rolled back"
    );

    let mut wrong_cvr = registration(USERNAME, "cc33", FIRST_HASH);
    wrong_cvr.cvr = Some("99999999".parse().unwrap());
    assert!(matches!(
        store.register_certificate(wrong_cvr).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .find_user(&user(USERNAME))
            .await
            .unwrap()
            .unwrap()
            .current_cert_fingerprint,
        RENEWED_FINGERPRINT
    );
}

/// A person (personal certificate) is a user without a company.
pub async fn a_person_is_a_user_without_a_company<S: IdentityStore>(store: Arc<S>) {
    let person = "PID_9208-2002-2-123456789012";
    let mut registration = registration(USERNAME, "ee55", FIRST_HASH);
    registration.username = user(person);
    registration.cvr = None;
    registration.account = person.parse().unwrap();
    registration.kind = "personal".into();
    let outcome = store.register_certificate(registration).await.unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.user.cvr, None);
    let known = store.find_user(&user(person)).await.unwrap().unwrap();
    assert_eq!(
        (known.user.cvr, known.user.kind.as_str()),
        (None, "personal")
    );
}

/// Users are listed by username.
pub async fn list_users_is_ordered_by_username<S: IdentityStore>(store: Arc<S>) {
    for (username, fingerprint) in [("CVR_22222222_UID_1", "f2"), ("CVR_11111111_RID_5", "f1")] {
        store
            .register_certificate(registration(username, fingerprint, FIRST_HASH))
            .await
            .unwrap();
    }
    let usernames: Vec<Username> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(usernames, ["CVR_11111111_RID_5", "CVR_22222222_UID_1"]);
}

/// A user's state can go anywhere; an unknown user's cannot be set.
pub async fn state_changes<S: IdentityStore>(store: Arc<S>) {
    with_user(&*store).await;
    for state in [
        UserState::Active,
        UserState::Suspended,
        UserState::Active,
        UserState::Deleted,
    ] {
        store.set_user_state(&user(USERNAME), state).await.unwrap();
        assert_eq!(
            store
                .find_user(&user(USERNAME))
                .await
                .unwrap()
                .unwrap()
                .user
                .state,
            state
        );
    }
    let unknown = "CVR_0_UID_0";
    assert!(matches!(
        store.set_user_state(&user(unknown), UserState::Active).await,
        Err(StoreError::NotFound { what: "user", key }) if key == unknown
    ));
}

/// A renewal may rotate the password; renewals, state changes and changed interface choices
/// are security changes, in order.
pub async fn a_renewal_can_rotate_the_password_and_every_authorisation_change_is_a_security_change<
    S: IdentityStore + PortalStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let start = store.latest_security_change().await.unwrap();
    let renewal = CertificateRegistration {
        rotate_password: true,
        roles: Vec::new(),
        ..registration(USERNAME, RENEWED_FINGERPRINT, "hmac-sha256:rotated")
    };
    let outcome = store.register_certificate(renewal).await.unwrap();
    assert!(outcome.password_rotated);
    let known = store.find_user(&user(USERNAME)).await.unwrap().unwrap();
    assert_eq!(known.password_hash, "hmac-sha256:rotated");
    assert_eq!(
        store
            .gateway_password_sealed(&user(USERNAME))
            .await
            .unwrap(),
        Some("sealed:hmac-sha256:rotated".into())
    );
    store
        .set_user_state(&user(USERNAME), UserState::Suspended)
        .await
        .unwrap();
    let profile = PortalProfile {
        interfaces: "as4".into(),
        ..Default::default()
    };
    store
        .set_portal_profile(&user(USERNAME), &profile, ACTIVATE_AT)
        .await
        .unwrap();
    // The same interfaces again change nothing that matters.
    store
        .set_portal_profile(&user(USERNAME), &profile, ACTIVATE_AT)
        .await
        .unwrap();
    let changes = store.security_changes(start, 100).await.unwrap();
    let seen: Vec<(&str, &str)> = changes
        .iter()
        .map(|change| (change.username.as_str(), change.change.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (USERNAME, "certificate_replaced"),
            (USERNAME, "suspended"),
            (USERNAME, "interfaces_changed"),
        ]
    );
    assert_eq!(
        store.latest_security_change().await.unwrap(),
        changes.last().unwrap().id
    );
    assert!(
        store
            .security_changes(changes[1].id, 100)
            .await
            .unwrap()
            .len()
            == 1
    );
}

/// The sealed gateway password is the one of the registration that created the user.
pub async fn the_sealed_gateway_password_survives_renewal<S: IdentityStore>(store: Arc<S>) {
    with_user(&*store).await;
    let sealed = store
        .gateway_password_sealed(&user(USERNAME))
        .await
        .unwrap();
    assert_eq!(sealed.as_deref(), Some("sealed:hmac-sha256:0001"));
    store
        .register_certificate(registration(
            USERNAME,
            RENEWED_FINGERPRINT,
            "hmac-sha256:other",
        ))
        .await
        .unwrap();
    assert_eq!(
        store
            .gateway_password_sealed(&user(USERNAME))
            .await
            .unwrap(),
        sealed
    );
    assert_eq!(
        store
            .gateway_password_sealed(&user("CVR_1_UID_9"))
            .await
            .unwrap(),
        None
    );
}

/// Registrations of different users and certificates, racing, all succeed.
pub async fn concurrent_registrations_all_succeed<S: IdentityStore>(store: Arc<S>) {
    // Spawning them also proves that the store's futures are Send.
    let outcomes = race(16, |n| {
        let store = Arc::clone(&store);
        async move {
            let username = format!("CVR_1000000{}_UID_{n}", n % 2);
            store
                .register_certificate(registration(&username, &format!("f{n}"), FIRST_HASH))
                .await
        }
    })
    .await;
    for outcome in outcomes {
        assert!(outcome.unwrap().created);
    }
    assert_eq!(store.list_users().await.unwrap().len(), 16);
}

/// Racing registrations of one certificate for different users: one user gets it, the others
/// a conflict, and none of them is created.
pub async fn racing_registrations_of_one_fingerprint_leave_one_owner<S: IdentityStore>(
    store: Arc<S>,
) {
    let outcomes = race(8, |n| {
        let store = Arc::clone(&store);
        async move {
            let username = format!("CVR_2000000{n}_UID_1");
            let outcome = store
                .register_certificate(registration(&username, "dd44", FIRST_HASH))
                .await;
            (username, outcome)
        }
    })
    .await;
    let mut winners = Vec::new();
    for (username, outcome) in outcomes {
        match outcome {
            Ok(outcome) => {
                assert!(outcome.created, "{username}: {outcome:?}");
                winners.push(username);
            }
            Err(error) => {
                assert!(
                    matches!(error, StoreError::Conflict(_)),
                    "{username}: {error:?}"
                );
                assert_eq!(
                    store.find_user(&user(&username)).await.unwrap(),
                    None,
                    "{username}"
                );
            }
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        store.certificate_owner("dd44").await.unwrap(),
        Some(CertificateOwner {
            username: user(&winners[0].clone()),
            current: true
        })
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

/// Racing registrations of different certificates for one new user: it is created once and
/// ends up with exactly one current certificate; a registration refused as a conflict left
/// no trace.
pub async fn racing_registrations_of_one_user_leave_one_current_certificate<S: IdentityStore>(
    store: Arc<S>,
) {
    let outcomes = race(8, |n| {
        let store = Arc::clone(&store);
        async move {
            let fingerprint = format!("e{n}");
            let outcome = store
                .register_certificate(registration(USERNAME, &fingerprint, FIRST_HASH))
                .await;
            (fingerprint, outcome)
        }
    })
    .await;
    let mut creations = 0;
    let mut registered = Vec::new();
    let mut refused = Vec::new();
    for (fingerprint, outcome) in outcomes {
        match outcome {
            Ok(outcome) => {
                creations += usize::from(outcome.created);
                registered.push(fingerprint);
            }
            Err(StoreError::Conflict(_)) => refused.push(fingerprint),
            Err(error) => panic!("{fingerprint}: {error:?}"),
        }
    }
    assert_eq!(creations, 1);
    let certificates = store.certificates(&user(USERNAME)).await.unwrap();
    let current: Vec<&str> = certificates
        .iter()
        .filter(|certificate| certificate.replaced_at.is_none())
        .map(|certificate| certificate.fingerprint.as_str())
        .collect();
    assert_eq!(current.len(), 1, "{certificates:?}");
    assert_eq!(
        store
            .find_user(&user(USERNAME))
            .await
            .unwrap()
            .unwrap()
            .current_cert_fingerprint,
        current[0]
    );
    let mut stored: Vec<&str> = certificates
        .iter()
        .map(|certificate| certificate.fingerprint.as_str())
        .collect();
    stored.sort_unstable();
    registered.sort_unstable();
    assert_eq!(stored, registered, "refused: {refused:?}");
}

/// A follower reading the security changes after the last id it saw, while they are being
/// made, sees every one of them, in increasing ids.
pub async fn a_follower_of_the_security_changes_misses_none<S: IdentityStore>(store: Arc<S>) {
    with_user(&*store).await;
    let start = store.latest_security_change().await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..10 {
                    let state = if (n + i) % 2 == 0 {
                        UserState::Active
                    } else {
                        UserState::Suspended
                    };
                    store.set_user_state(&user(USERNAME), state).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut last = start;
    watch(writers, async || {
        let changes = store.security_changes(last, 7).await.unwrap();
        for change in &changes {
            assert!(change.id > last, "{} after {last}", change.id);
            last = change.id;
            seen.push(change.id);
        }
        !changes.is_empty()
    })
    .await;
    let all: Vec<i64> = store
        .security_changes(start, 1000)
        .await
        .unwrap()
        .iter()
        .map(|change| change.id)
        .collect();
    assert_eq!(all.len(), 40);
    assert_eq!(seen, all);
    assert_eq!(store.latest_security_change().await.unwrap(), last);
}
