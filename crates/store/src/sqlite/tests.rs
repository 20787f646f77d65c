//! Tests of the SQLite store, in memory and on disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use mftgw_domain::{AuditEvent, AuditOutcome, UserState};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

pub(super) const USERNAME: &str = "CVR_12345678_UID_1";
const FIRST_FINGERPRINT: &str = "aa11";
const RENEWED_FINGERPRINT: &str = "bb22";
const FIRST_HASH: &str = "hmac-sha256:0001";
const ACTIVATE_AT: OffsetDateTime = datetime!(2025-03-01 10:15 UTC);

pub(super) fn registration(
    username: &str,
    fingerprint: &str,
    password_hash: &str,
) -> CertificateRegistration {
    let (cvr, account) = username
        .strip_prefix("CVR_")
        .and_then(|rest| rest.split_once('_'))
        .expect("test usernames look like CVR_<cvr>_<account>");
    CertificateRegistration {
        username: username.into(),
        cvr: cvr.into(),
        account: account.into(),
        kind: "voces".into(),
        fingerprint: fingerprint.into(),
        subject: format!(
            "CN=Test, serialNumber=CVR:{cvr}-{}",
            account.replace('_', ":")
        ),
        serial_hex: "01ab".into(),
        not_after: datetime!(2028-01-01 00:00 UTC),
        cert_der: vec![0x30, 0x82, 0x01, 0x00],
        new_password_hash: password_hash.into(),
        new_password_sealed: format!("sealed:{password_hash}"),
        activate_at: ACTIVATE_AT,
        rotate_password: false,
    }
}

pub(super) async fn store_with_user() -> SqliteStore {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store
        .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
        .await
        .unwrap();
    store
}

/// A directory under the system temp dir, removed with everything in it when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "mftgw-store-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn registration_creates_a_pending_user() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let outcome = store
        .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
        .await
        .unwrap();
    assert!(outcome.created && !outcome.unchanged);
    assert_eq!(outcome.user.username, USERNAME);
    assert_eq!(
        (outcome.user.cvr.as_str(), outcome.user.account.as_str()),
        ("12345678", "UID_1")
    );
    assert_eq!(outcome.user.state, UserState::PendingActivation);
    assert_eq!(outcome.user.activate_at, Some(ACTIVATE_AT));

    let known = store.find_user(USERNAME).await.unwrap().unwrap();
    assert_eq!(known.user, outcome.user);
    assert_eq!(known.current_cert_fingerprint, FIRST_FINGERPRINT);
    assert_eq!(known.password_hash, FIRST_HASH);
    assert_eq!(
        store.certificate_owner(FIRST_FINGERPRINT).await.unwrap(),
        Some(CertificateOwner {
            username: USERNAME.into(),
            current: true
        })
    );
    assert_eq!(store.find_user("CVR_12345678_UID_2").await.unwrap(), None);
    assert_eq!(store.certificate_owner("ffff").await.unwrap(), None);
}

#[tokio::test]
async fn renewal_keeps_the_password_and_marks_the_old_certificate_replaced() {
    let store = store_with_user().await;
    store
        .set_user_state(USERNAME, UserState::Active)
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

    let known = store.find_user(USERNAME).await.unwrap().unwrap();
    assert_eq!(known.current_cert_fingerprint, RENEWED_FINGERPRINT);
    assert_eq!(known.password_hash, FIRST_HASH);
    let certificates = store.certificates(USERNAME).await.unwrap();
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
            username: USERNAME.into(),
            current: false
        })
    );
    assert_eq!(
        store.certificate_owner(RENEWED_FINGERPRINT).await.unwrap(),
        Some(CertificateOwner {
            username: USERNAME.into(),
            current: true
        })
    );
}

#[tokio::test]
async fn registering_the_current_certificate_again_changes_nothing() {
    let store = store_with_user().await;
    let before = store.find_user(USERNAME).await.unwrap();
    let outcome = store
        .register_certificate(registration(
            USERNAME,
            FIRST_FINGERPRINT,
            "hmac-sha256:other",
        ))
        .await
        .unwrap();
    assert!(!outcome.created && outcome.unchanged);
    assert_eq!(store.find_user(USERNAME).await.unwrap(), before);
}

#[tokio::test]
async fn conflicting_registrations_are_refused_without_changes() {
    let store = store_with_user().await;
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
        store.find_user(other_user).await.unwrap(),
        None,
        "the refused registration was rolled back"
    );

    let mut wrong_cvr = registration(USERNAME, "cc33", FIRST_HASH);
    wrong_cvr.cvr = "99999999".into();
    assert!(matches!(
        store.register_certificate(wrong_cvr).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .find_user(USERNAME)
            .await
            .unwrap()
            .unwrap()
            .current_cert_fingerprint,
        RENEWED_FINGERPRINT
    );
}

#[tokio::test]
async fn list_users_is_ordered_by_username() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    for (username, fingerprint) in [("CVR_2_UID_1", "f2"), ("CVR_1_RID_5", "f1")] {
        store
            .register_certificate(registration(username, fingerprint, FIRST_HASH))
            .await
            .unwrap();
    }
    let usernames: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(usernames, ["CVR_1_RID_5", "CVR_2_UID_1"]);
}

#[tokio::test]
async fn state_changes() {
    let store = store_with_user().await;
    for state in [
        UserState::Active,
        UserState::Suspended,
        UserState::Active,
        UserState::Deleted,
    ] {
        store.set_user_state(USERNAME, state).await.unwrap();
        assert_eq!(
            store.find_user(USERNAME).await.unwrap().unwrap().user.state,
            state
        );
    }
    let unknown = "CVR_0_UID_0";
    assert!(matches!(
        store.set_user_state(unknown, UserState::Active).await,
        Err(StoreError::NotFound { what: "user", key }) if key == unknown
    ));
}

#[tokio::test]
async fn roles_from_both_sources() {
    let store = store_with_user().await;
    assert!(
        store
            .grant_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .grant_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap(),
        "already granted"
    );
    assert!(
        store
            .grant_role(USERNAME, "FATCA", RoleSource::Replicated)
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_role(
                USERNAME,
                "DMIValutaKurserOverførService",
                RoleSource::Replicated
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_role(USERNAME, "CRS", RoleSource::Local)
            .await
            .unwrap()
    );
    assert_eq!(
        store.roles(USERNAME).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService", "FATCA"]
    );

    assert!(
        store
            .revoke_role(USERNAME, "FATCA", RoleSource::Replicated)
            .await
            .unwrap()
    );
    assert_eq!(
        store.roles(USERNAME).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService", "FATCA"],
        "the local grant still holds"
    );
    assert!(
        store
            .revoke_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap(),
        "nothing left to revoke"
    );
    assert_eq!(
        store.roles(USERNAME).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService"]
    );

    assert!(matches!(
        store.roles("CVR_0_UID_0").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .grant_role("CVR_0_UID_0", "CRS", RoleSource::Local)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn audit_events_are_appended_and_queried() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let at = datetime!(2025-03-01 10:00:00.123456 UTC);
    let refused = AuditEvent::refused(at, "ftps.login", "wrong_password")
        .with_username(USERNAME)
        .with_peer_ip("192.0.2.7")
        .with_cert_fingerprint(FIRST_FINGERPRINT)
        .with_detail(serde_json::json!({ "attempt": 4, "client": "WinSCP" }));
    let allowed = AuditEvent::allowed(at, "ftps.login").with_username(USERNAME);
    let tls = AuditEvent::info(at, "ftps.tls").with_peer_ip("192.0.2.8");
    let other_user = AuditEvent::allowed(at, "ftps.login").with_username("CVR_2_UID_1");

    store
        .append_audit(&[refused.clone(), allowed.clone()])
        .await
        .unwrap();
    store
        .append_audit(&[tls.clone(), other_user.clone()])
        .await
        .unwrap();
    let everything = store.audit_events(AuditQuery::default()).await.unwrap();
    let ids: Vec<i64> = everything.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    assert_eq!(
        everything
            .iter()
            .map(|(_, event)| event.clone())
            .collect::<Vec<_>>(),
        [
            refused.clone(),
            allowed.clone(),
            tls.clone(),
            other_user.clone()
        ],
        "appended in order"
    );
    assert_eq!(everything.len(), 4);
    assert_eq!(
        everything[0],
        (ids[0], refused.clone()),
        "every field round-trips"
    );
    assert_eq!(everything[2].1.outcome, AuditOutcome::Info);

    let by_user = AuditQuery {
        username: Some(USERNAME.into()),
        ..AuditQuery::default()
    };
    let events = store.audit_events(by_user.clone()).await.unwrap();
    assert_eq!(
        events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );

    let by_action = AuditQuery {
        action: Some("ftps.login".into()),
        ..AuditQuery::default()
    };
    assert_eq!(store.audit_events(by_action).await.unwrap().len(), 3);

    let after_first = AuditQuery {
        since_id: Some(ids[0]),
        ..by_user
    };
    assert_eq!(
        store.audit_events(after_first).await.unwrap(),
        [(ids[1], allowed)]
    );

    let limited = AuditQuery {
        limit: 2,
        ..AuditQuery::default()
    };
    let events = store.audit_events(limited).await.unwrap();
    assert_eq!(
        events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store
        .append_audit(&[AuditEvent::info(
            OffsetDateTime::now_utc(),
            "admin.register",
        )])
        .await
        .unwrap();
    let id = store.audit_events(AuditQuery::default()).await.unwrap()[0].0;

    let update = sqlx::query("UPDATE audit_log SET action = 'tampered' WHERE id = $1")
        .bind(id)
        .execute(&store.writer)
        .await;
    let delete = sqlx::query("DELETE FROM audit_log WHERE id = $1")
        .bind(id)
        .execute(&store.writer)
        .await;
    for (statement, result) in [("UPDATE", update), ("DELETE", delete)] {
        let error = result.expect_err(statement).to_string();
        assert!(
            error.contains("audit_log is append-only"),
            "{statement}: {error}"
        );
    }
    let events = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(events[0].1.action, "admin.register");
}

#[tokio::test]
async fn on_disk_store_keeps_its_data_across_reopening() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
            .await
            .unwrap();
        store
            .grant_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap();
        store
            .append_audit(&[AuditEvent::allowed(ACTIVATE_AT, "admin.register")])
            .await
            .unwrap();
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(journal_mode, "wal");
        store.writer.close().await;
        store.reader.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let known = store.find_user(USERNAME).await.unwrap().unwrap();
    assert_eq!(known.password_hash, FIRST_HASH);
    assert_eq!(store.roles(USERNAME).await.unwrap(), ["FATCA"]);
    assert_eq!(
        store
            .audit_events(AuditQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn open_names_the_file_it_could_not_open() {
    let dir = TempDir::new();
    let path = dir.0.join("missing-directory").join("gateway.sqlite");
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("missing-directory"), "{error}");
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    migrations::apply(&store.writer).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&store.writer)
            .await
            .unwrap();
    let expected: Vec<i64> = migrations::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
}

#[test]
fn migration_versions_count_up_from_one() {
    for (index, migration) in migrations::MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
    }
}

#[tokio::test]
async fn a_schema_newer_than_the_program_is_refused() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'x')",
    )
    .execute(&store.writer)
    .await
    .unwrap();
    store.writer.close().await;
    store.reader.close().await;
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_on_disk_all_succeed() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("gateway.sqlite"))
        .await
        .unwrap();
    // tokio::spawn also proves that the Store futures are Send.
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let username = format!("CVR_1000000{}_UID_{n}", n % 2);
                store
                    .register_certificate(registration(&username, &format!("f{n}"), FIRST_HASH))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().created);
    }
    assert_eq!(store.list_users().await.unwrap().len(), 16);
}

#[tokio::test]
async fn replication_replaces_only_replicated_roles() {
    let store = store_with_user().await;
    store
        .grant_role(USERNAME, "AKFA", RoleSource::Local)
        .await
        .unwrap();
    let snapshot = |services: &[&str]| -> Vec<(String, String)> {
        services
            .iter()
            .map(|service| (USERNAME.to_string(), service.to_string()))
            .collect()
    };
    let mut first = snapshot(&["FATCA", "CPS", "AKFA"]);
    first.push(("CVR_0_UID_0".into(), "FATCA".into()));
    let outcome = store.replace_replicated_roles(&first).await.unwrap();
    assert_eq!((outcome.granted, outcome.revoked), (3, 0));
    assert_eq!(outcome.unknown_users, ["CVR_0_UID_0"]);
    assert_eq!(
        store.roles(USERNAME).await.unwrap(),
        ["AKFA", "CPS", "FATCA"]
    );

    // Upstream drops CPS and AKFA: CPS goes, AKFA stays because an operator granted it too.
    let outcome = store
        .replace_replicated_roles(&snapshot(&["FATCA"]))
        .await
        .unwrap();
    assert_eq!((outcome.granted, outcome.revoked), (0, 2));
    assert_eq!(store.roles(USERNAME).await.unwrap(), ["AKFA", "FATCA"]);
    let outcome = store.replace_replicated_roles(&[]).await.unwrap();
    assert_eq!(outcome.revoked, 1);
    assert_eq!(store.roles(USERNAME).await.unwrap(), ["AKFA"]);
}

/// Whether a connection of `pool` has SQLite's query planner stability guarantee on.
async fn plans_ignore_bound_values(pool: &SqlitePool) -> bool {
    let mut connection = pool.acquire().await.unwrap();
    let mut handle = connection.lock_handle().await.unwrap();
    let mut enabled: std::ffi::c_int = -1;
    // SAFETY: an open, locked connection; -1 leaves the setting as it is and reads it out.
    let code = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            -1 as std::ffi::c_int,
            &mut enabled as *mut std::ffi::c_int,
        )
    };
    assert_eq!(code, libsqlite3_sys::SQLITE_OK);
    enabled == 1
}

#[tokio::test]
async fn every_connection_plans_without_looking_at_bound_values() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("gateway.sqlite"))
        .await
        .unwrap();
    assert!(plans_ignore_bound_values(&store.writer).await);
    assert!(plans_ignore_bound_values(&store.reader).await);
    let in_memory = SqliteStore::open_in_memory().await.unwrap();
    assert!(plans_ignore_bound_values(&in_memory.writer).await);
}

#[tokio::test]
async fn a_renewal_can_rotate_the_password_and_every_authorisation_change_is_a_security_change() {
    let store = store_with_user().await;
    let start = store.latest_security_change().await.unwrap();
    let renewal = CertificateRegistration {
        rotate_password: true,
        ..registration(USERNAME, RENEWED_FINGERPRINT, "hmac-sha256:rotated")
    };
    let outcome = store.register_certificate(renewal).await.unwrap();
    assert!(outcome.password_rotated);
    let known = store.find_user(USERNAME).await.unwrap().unwrap();
    assert_eq!(known.password_hash, "hmac-sha256:rotated");
    assert_eq!(
        store.gateway_password_sealed(USERNAME).await.unwrap(),
        Some("sealed:hmac-sha256:rotated".into())
    );
    store
        .set_user_state(USERNAME, UserState::Suspended)
        .await
        .unwrap();
    let profile = crate::PortalProfile {
        interfaces: "as4".into(),
        ..Default::default()
    };
    store
        .set_portal_profile(USERNAME, &profile, ACTIVATE_AT)
        .await
        .unwrap();
    // The same interfaces again change nothing that matters.
    store
        .set_portal_profile(USERNAME, &profile, ACTIVATE_AT)
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

#[tokio::test]
async fn a_role_counts_as_held_within_the_retention_after_it_ends() {
    let store = store_with_user().await;
    let long_ago = datetime!(2020-01-01 00:00 UTC);
    assert!(
        !store
            .held_role_since(USERNAME, "FATCA", long_ago)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_role(USERNAME, "FATCA", RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .held_role_since(USERNAME, "FATCA", long_ago)
            .await
            .unwrap(),
        "revoking a role never held makes no history"
    );
    store
        .grant_role(USERNAME, "FATCA", RoleSource::Local)
        .await
        .unwrap();
    store
        .grant_role(USERNAME, "FATCA", RoleSource::Replicated)
        .await
        .unwrap();
    assert!(
        store
            .held_role_since(USERNAME, "FATCA", long_ago)
            .await
            .unwrap()
    );
    store
        .revoke_role(USERNAME, "FATCA", RoleSource::Local)
        .await
        .unwrap();
    store.replace_replicated_roles(&[]).await.unwrap();
    assert!(store.roles(USERNAME).await.unwrap().is_empty());
    assert!(
        store
            .held_role_since(USERNAME, "FATCA", long_ago)
            .await
            .unwrap(),
        "ended just now, within any retention"
    );
    let future = OffsetDateTime::now_utc() + time::Duration::HOUR;
    assert!(
        !store
            .held_role_since(USERNAME, "FATCA", future)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn audit_events_are_deleted_only_before_the_retention_cutoff() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let old = AuditEvent::info(datetime!(2024-01-01 00:00 UTC), "admin.register");
    let recent = AuditEvent::info(datetime!(2025-06-01 00:00 UTC), "admin.register");
    store
        .append_audit(&[old.clone(), recent.clone()])
        .await
        .unwrap();
    let cutoff = datetime!(2025-01-01 00:00 UTC);
    let expiring = store
        .audit_events(AuditQuery {
            before: Some(cutoff),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0].1, old);
    assert_eq!(store.expire_audit(cutoff, expiring[0].0).await.unwrap(), 1);
    let kept = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1, recent);

    // Within the retention the log stays append-only, and the cutoff cannot move back.
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&store.writer)
        .await
        .expect_err("a recent event was deleted");
    assert!(
        delete
            .to_string()
            .contains("append-only within its retention"),
        "{delete}"
    );
    let back = sqlx::query("UPDATE audit_retention SET cutoff = '2000-01-01T00:00:00.000000Z'")
        .execute(&store.writer)
        .await
        .expect_err("the cutoff moved back");
    assert!(back.to_string().contains("only moves forward"), "{back}");
    let ahead = sqlx::query("UPDATE audit_retention SET cutoff = '9999-01-01T00:00:00.000000Z'")
        .execute(&store.writer)
        .await
        .expect_err("the cutoff passed the present");
    assert!(
        ahead.to_string().contains("cannot pass the present"),
        "{ahead}"
    );
    assert_eq!(
        store
            .expire_audit(datetime!(2024-06-01 00:00 UTC), i64::MAX)
            .await
            .unwrap(),
        0,
        "an earlier cutoff changes nothing"
    );
}
