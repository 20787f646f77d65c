//! Checks of [`PortalStore`]: accounts, sessions, initial codes and registration jobs.

use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::user;
use super::{USERNAME, race, with_user};
use crate::{
    IdentityStore, InitialCode, NewRegistrationJob, PortalProfile, PortalSession, PortalStore,
    RegistrationJobState,
};

const AT: OffsetDateTime = datetime!(2025-03-01 10:00 UTC);

/// A session of [`USERNAME`] with its first certificate, opened at [`AT`].
fn session(token_hash: &str, last_seen_at: OffsetDateTime) -> PortalSession {
    PortalSession {
        token_hash: token_hash.into(),
        username: user(USERNAME),
        cert_fingerprint: "aa11".into(),
        csrf_token: "csrf".into(),
        must_change_password: true,
        created_at: AT,
        last_seen_at,
    }
}

/// A registration of the certificate `fingerprint` for [`USERNAME`], asked for at [`AT`].
fn job(fingerprint: &str) -> NewRegistrationJob {
    NewRegistrationJob {
        username: user(USERNAME),
        cert_fingerprint: fingerprint.into(),
        cert_der: vec![0x30, 0x03],
        requested_at: AT,
    }
}

/// An account appears with the first password or profile change; each change keeps the other.
pub async fn portal_account_password_and_profile_are_independent<S: PortalStore>(store: Arc<S>) {
    assert_eq!(store.portal_account(&user(USERNAME)).await.unwrap(), None);

    let profile = PortalProfile {
        se_number: Some("12345678".into()),
        email: Some("a@b.example".into()),
        interfaces: "ftps,as4".into(),
    };
    store
        .set_portal_profile(&user(USERNAME), &profile, AT)
        .await
        .unwrap();
    let account = store
        .portal_account(&user(USERNAME))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.password_hash, None,
        "a profile change sets no password"
    );
    assert_eq!(account.profile, profile);

    store
        .set_portal_password(&user(USERNAME), "$argon2id$x", AT)
        .await
        .unwrap();
    let account = store
        .portal_account(&user(USERNAME))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$x"));
    assert_eq!(
        account.profile, profile,
        "a password change keeps the profile"
    );
}

/// Sessions are found by their token hash, kept alive by activity, expired when idle, and
/// deleted one by one or by user (but those of one certificate).
pub async fn sessions_are_found_by_hash_touched_and_expired<S: PortalStore>(store: Arc<S>) {
    store
        .create_portal_session(&session("old", AT))
        .await
        .unwrap();
    store
        .create_portal_session(&session("new", AT))
        .await
        .unwrap();
    assert_eq!(
        store.portal_session("new").await.unwrap(),
        Some(session("new", AT))
    );
    assert_eq!(store.portal_session("other").await.unwrap(), None);

    let later = AT + Duration::minutes(20);
    store.touch_portal_session("new", later).await.unwrap();
    assert_eq!(
        store
            .expire_portal_sessions(AT + Duration::minutes(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.portal_session("old").await.unwrap(), None);
    assert_eq!(
        store
            .portal_session("new")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );

    store.delete_portal_session("new").await.unwrap();
    assert_eq!(store.portal_session("new").await.unwrap(), None);

    store
        .create_portal_session(&session("a", AT))
        .await
        .unwrap();
    store
        .create_portal_session(&session("b", AT))
        .await
        .unwrap();
    let mut other_certificate = session("c", AT);
    other_certificate.cert_fingerprint = "renewed".into();
    store
        .create_portal_session(&other_certificate)
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_portal_sessions_of(&user(USERNAME), Some("renewed"))
            .await
            .unwrap(),
        2,
        "all but the renewed certificate's"
    );
    assert!(store.portal_session("c").await.unwrap().is_some());
    assert_eq!(
        store
            .delete_portal_sessions_of(&user(USERNAME), None)
            .await
            .unwrap(),
        1
    );
}

/// An initial code is kept with its expiry, and sets no password.
pub async fn an_initial_code_is_kept_with_its_expiry<S: PortalStore>(store: Arc<S>) {
    let expires = AT + Duration::days(7);
    store
        .set_portal_initial_code(&user(USERNAME), "$argon2id$code", expires)
        .await
        .unwrap();
    let account = store
        .portal_account(&user(USERNAME))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.password_hash, None);
    assert_eq!(
        account.initial_code,
        Some(InitialCode {
            hash: "$argon2id$code".into(),
            expires_at: expires
        })
    );
}

/// A registration is queued once however often it is asked for, finished once, and can be
/// asked for again once it has failed.
pub async fn a_registration_is_queued_once_and_finished_once<S: PortalStore>(store: Arc<S>) {
    let (first, created) = store.request_registration(job("cc33")).await.unwrap();
    assert!(created);
    assert_eq!(first.state, RegistrationJobState::Queued);
    let (again, created) = store.request_registration(job("cc33")).await.unwrap();
    assert!(!created, "a second click queues nothing");
    assert_eq!(again.id, first.id);

    let queued = store.queued_registrations(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].cert_der, vec![0x30, 0x03]);

    store
        .finish_registration(first.id, Err("refused".into()), AT)
        .await
        .unwrap();
    store
        .finish_registration(first.id, Ok(()), AT)
        .await
        .unwrap();
    let latest = store.latest_registration("cc33").await.unwrap().unwrap();
    assert_eq!(latest.state, RegistrationJobState::Failed, "finished once");
    assert_eq!(latest.error.as_deref(), Some("refused"));
    assert!(store.queued_registrations(10).await.unwrap().is_empty());

    let (retry, created) = store.request_registration(job("cc33")).await.unwrap();
    assert!(created, "a failed job can be asked for again");
    assert_ne!(retry.id, first.id);
    assert_eq!(store.latest_registration("zz").await.unwrap(), None);
}

/// The person's interface choice decides whether the user may log in over FTPS.
pub async fn the_interface_choice_reaches_the_ftps_login<S: IdentityStore + PortalStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let ftps_chosen = async |store: &S| {
        store
            .find_user(&user(USERNAME))
            .await
            .unwrap()
            .unwrap()
            .ftps_chosen
    };
    assert!(
        ftps_chosen(&*store).await,
        "FTPS until the person chooses otherwise"
    );
    let as4_only = PortalProfile {
        interfaces: "as4".into(),
        ..PortalProfile::default()
    };
    store
        .set_portal_profile(&user(USERNAME), &as4_only, AT)
        .await
        .unwrap();
    assert!(!ftps_chosen(&*store).await);
    store
        .set_portal_profile(&user(USERNAME), &PortalProfile::default(), AT)
        .await
        .unwrap();
    assert!(ftps_chosen(&*store).await);
}

/// Racing requests to register one certificate queue one job, and every request is told
/// which.
pub async fn racing_registration_requests_queue_one_job<S: PortalStore>(store: Arc<S>) {
    let outcomes = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.request_registration(job("cc33")).await }
    })
    .await;
    let mut created = 0;
    let mut ids = Vec::new();
    for outcome in outcomes {
        let (job, queued_now) = outcome.unwrap();
        assert_eq!(job.state, RegistrationJobState::Queued);
        created += usize::from(queued_now);
        ids.push(job.id);
    }
    assert_eq!(created, 1);
    let queued = store.queued_registrations(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(ids.iter().all(|id| *id == queued[0].job.id), "{ids:?}");
}

/// Racing creations of sessions with one token hash create one; the others fail and change
/// nothing.
pub async fn racing_sessions_of_one_token_hash_make_one<S: PortalStore>(store: Arc<S>) {
    let outcomes = race(8, |n| {
        let store = Arc::clone(&store);
        let mut candidate = session("same", AT);
        candidate.csrf_token = format!("csrf{n}");
        async move {
            let created = store.create_portal_session(&candidate).await;
            (created, candidate)
        }
    })
    .await;
    let winners: Vec<PortalSession> = outcomes
        .into_iter()
        .filter_map(|(created, candidate)| created.is_ok().then_some(candidate))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        store.portal_session("same").await.unwrap().as_ref(),
        winners.first()
    );
}
