use time::Duration;
use time::macros::datetime;

use super::tests::{USERNAME, registration, store_with_user};
use crate::prelude::*;
use crate::{NewRegistrationJob, PortalProfile, PortalSession, RegistrationJobState, SqliteStore};

const AT: time::OffsetDateTime = datetime!(2025-03-01 10:00 UTC);

fn session(token_hash: &str, last_seen_at: time::OffsetDateTime) -> PortalSession {
    PortalSession {
        token_hash: token_hash.into(),
        username: USERNAME.into(),
        cert_fingerprint: "aa11".into(),
        csrf_token: "csrf".into(),
        must_change_password: true,
        created_at: AT,
        last_seen_at,
    }
}

fn job(fingerprint: &str) -> NewRegistrationJob {
    NewRegistrationJob {
        username: USERNAME.into(),
        cert_fingerprint: fingerprint.into(),
        cert_der: vec![0x30, 0x03],
        requested_at: AT,
    }
}

#[tokio::test]
async fn portal_account_password_and_profile_are_independent() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert_eq!(store.portal_account(USERNAME).await.unwrap(), None);

    let profile = PortalProfile {
        se_number: Some("12345678".into()),
        email: Some("a@b.example".into()),
        interfaces: "ftps,as4".into(),
    };
    store
        .set_portal_profile(USERNAME, &profile, AT)
        .await
        .unwrap();
    let account = store.portal_account(USERNAME).await.unwrap().unwrap();
    assert_eq!(
        account.password_hash, None,
        "a profile change sets no password"
    );
    assert_eq!(account.profile, profile);

    store
        .set_portal_password(USERNAME, "$argon2id$x", AT)
        .await
        .unwrap();
    let account = store.portal_account(USERNAME).await.unwrap().unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$x"));
    assert_eq!(
        account.profile, profile,
        "a password change keeps the profile"
    );
}

#[tokio::test]
async fn sessions_are_found_by_hash_touched_and_expired() {
    let store = SqliteStore::open_in_memory().await.unwrap();
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
            .delete_portal_sessions_of(USERNAME, Some("renewed"))
            .await
            .unwrap(),
        2,
        "all but the renewed certificate's"
    );
    assert!(store.portal_session("c").await.unwrap().is_some());
    assert_eq!(
        store
            .delete_portal_sessions_of(USERNAME, None)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn an_initial_code_is_kept_with_its_expiry() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let expires = AT + Duration::days(7);
    store
        .set_portal_initial_code(USERNAME, "$argon2id$code", expires)
        .await
        .unwrap();
    let account = store.portal_account(USERNAME).await.unwrap().unwrap();
    assert_eq!(account.password_hash, None);
    assert_eq!(
        account.initial_code,
        Some(crate::InitialCode {
            hash: "$argon2id$code".into(),
            expires_at: expires
        })
    );
}

#[tokio::test]
async fn a_registration_is_queued_once_and_finished_once() {
    let store = SqliteStore::open_in_memory().await.unwrap();
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

#[tokio::test]
async fn the_sealed_gateway_password_survives_renewal() {
    let store = store_with_user().await;
    let sealed = store.gateway_password_sealed(USERNAME).await.unwrap();
    assert_eq!(sealed.as_deref(), Some("sealed:hmac-sha256:0001"));
    store
        .register_certificate(registration(USERNAME, "bb22", "hmac-sha256:other"))
        .await
        .unwrap();
    assert_eq!(
        store.gateway_password_sealed(USERNAME).await.unwrap(),
        sealed
    );
    assert_eq!(
        store.gateway_password_sealed("CVR_1_UID_9").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_interface_choice_reaches_the_ftps_login() {
    let store = store_with_user().await;
    let ftps_chosen = |store: &SqliteStore| {
        let store = store.clone();
        async move {
            store
                .find_user(USERNAME)
                .await
                .unwrap()
                .unwrap()
                .ftps_chosen
        }
    };
    assert!(
        ftps_chosen(&store).await,
        "FTPS until the person chooses otherwise"
    );
    let as4_only = PortalProfile {
        interfaces: "as4".into(),
        ..PortalProfile::default()
    };
    store
        .set_portal_profile(USERNAME, &as4_only, AT)
        .await
        .unwrap();
    assert!(!ftps_chosen(&store).await);
    store
        .set_portal_profile(USERNAME, &PortalProfile::default(), AT)
        .await
        .unwrap();
    assert!(ftps_chosen(&store).await);
}
