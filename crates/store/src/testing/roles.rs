//! Checks of [`RoleStore`]: local and replicated grants, replication, and role history.

use std::sync::Arc;

use time::OffsetDateTime;
use time::macros::datetime;

use mftgw_domain::{ServiceName, Username};

use super::{
    FIRST_FINGERPRINT, FIRST_HASH, RENEWED_FINGERPRINT, USERNAME, race, registration, watch,
    with_user,
};
use super::{service, user};
use crate::{IdentityStore, RoleSource, RoleStore, StoreError};

/// Replicated grants of `services` to [`USERNAME`], as replication passes them.
fn replicated(services: &[&str]) -> Vec<(Username, ServiceName)> {
    services
        .iter()
        .map(|name| (user(USERNAME), service(name)))
        .collect()
}

/// A registration's roles are granted as local roles in its commit, on creation, renewal and
/// repetition alike; a refused registration grants none.
pub async fn a_registration_grants_its_roles_in_the_same_commit<S: IdentityStore + RoleStore>(
    store: Arc<S>,
) {
    let with_roles = |fingerprint: &str, roles: &[&str]| {
        let mut registration = registration(USERNAME, fingerprint, FIRST_HASH);
        registration.roles = roles.iter().map(|name| service(name)).collect();
        registration
    };
    let created = store
        .register_certificate(with_roles(FIRST_FINGERPRINT, &["FATCA", "HEARTBEAT"]))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(
        created.roles_granted,
        [service("FATCA"), service("HEARTBEAT")]
    );

    let repeated = store
        .register_certificate(with_roles(FIRST_FINGERPRINT, &["HEARTBEAT", "DMS"]))
        .await
        .unwrap();
    assert!(repeated.unchanged);
    assert_eq!(repeated.roles_granted, [service("DMS")], "only the new one");

    let renewed = store
        .register_certificate(with_roles(RENEWED_FINGERPRINT, &["DMS"]))
        .await
        .unwrap();
    assert!(!renewed.created && !renewed.unchanged);
    assert!(renewed.roles_granted.is_empty());

    let mut refused = registration("CVR_12345678_UID_2", FIRST_FINGERPRINT, FIRST_HASH);
    refused.roles = vec![service("VAT")];
    assert!(matches!(
        store.register_certificate(refused).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        [service("DMS"), service("FATCA"), service("HEARTBEAT")]
    );
    assert!(
        store
            .find_user(&user("CVR_12345678_UID_2"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Each source grants and revokes its own grants; a role is held while either grants it.
pub async fn roles_from_both_sources<S: IdentityStore + RoleStore>(store: Arc<S>) {
    with_user(&*store).await;
    assert!(
        store
            .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap(),
        "already granted"
    );
    assert!(
        store
            .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Replicated)
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_role(
                &user(USERNAME),
                &service("DMIValutaKurserOverførService"),
                RoleSource::Replicated
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_role(&user(USERNAME), &service("CRS"), RoleSource::Local)
            .await
            .unwrap()
    );
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService", "FATCA"]
    );

    assert!(
        store
            .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Replicated)
            .await
            .unwrap()
    );
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService", "FATCA"],
        "the local grant still holds"
    );
    assert!(
        store
            .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap(),
        "nothing left to revoke"
    );
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        ["CRS", "DMIValutaKurserOverførService"]
    );

    assert!(matches!(
        store.roles(&user("CVR_0_UID_0")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .grant_role(&user("CVR_0_UID_0"), &service("CRS"), RoleSource::Local)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Replication makes the replicated grants exactly the snapshot, skipping unknown users, and
/// leaves local grants alone.
pub async fn replication_replaces_only_replicated_roles<S: IdentityStore + RoleStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    store
        .grant_role(&user(USERNAME), &service("AKFA"), RoleSource::Local)
        .await
        .unwrap();
    let mut first = replicated(&["FATCA", "CPS", "AKFA"]);
    first.push((user("CVR_0_UID_0"), service("FATCA")));
    let outcome = store.replace_replicated_roles(&first).await.unwrap();
    assert_eq!((outcome.granted, outcome.revoked), (3, 0));
    assert_eq!(outcome.unknown_users, ["CVR_0_UID_0"]);
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        ["AKFA", "CPS", "FATCA"]
    );

    // Upstream drops CPS and AKFA: CPS goes, AKFA stays because an operator granted it too.
    let outcome = store
        .replace_replicated_roles(&replicated(&["FATCA"]))
        .await
        .unwrap();
    assert_eq!((outcome.granted, outcome.revoked), (0, 2));
    assert_eq!(
        store.roles(&user(USERNAME)).await.unwrap(),
        ["AKFA", "FATCA"]
    );
    let outcome = store.replace_replicated_roles(&[]).await.unwrap();
    assert_eq!(outcome.revoked, 1);
    assert_eq!(store.roles(&user(USERNAME)).await.unwrap(), ["AKFA"]);
}

/// A role counts as held since a time if it is held now or ended at or after that time.
pub async fn a_role_counts_as_held_within_the_retention_after_it_ends<
    S: IdentityStore + RoleStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let long_ago = datetime!(2020-01-01 00:00 UTC);
    assert!(
        !store
            .held_role_since(&user(USERNAME), &service("FATCA"), long_ago)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .held_role_since(&user(USERNAME), &service("FATCA"), long_ago)
            .await
            .unwrap(),
        "revoking a role never held makes no history"
    );
    store
        .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
        .await
        .unwrap();
    store
        .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Replicated)
        .await
        .unwrap();
    assert!(
        store
            .held_role_since(&user(USERNAME), &service("FATCA"), long_ago)
            .await
            .unwrap()
    );
    store
        .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
        .await
        .unwrap();
    store.replace_replicated_roles(&[]).await.unwrap();
    assert!(store.roles(&user(USERNAME)).await.unwrap().is_empty());
    assert!(
        store
            .held_role_since(&user(USERNAME), &service("FATCA"), long_ago)
            .await
            .unwrap(),
        "ended just now, within any retention"
    );
    let future = OffsetDateTime::now_utc() + time::Duration::HOUR;
    assert!(
        !store
            .held_role_since(&user(USERNAME), &service("FATCA"), future)
            .await
            .unwrap()
    );
}

/// Racing grants of one role by one source make one grant, and racing revocations end it
/// once.
pub async fn racing_grants_and_revokes_of_one_role_take_effect_once<
    S: IdentityStore + RoleStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let took_effect = async |grant: bool| {
        race(8, |_| {
            let store = Arc::clone(&store);
            async move {
                if grant {
                    store
                        .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
                        .await
                } else {
                    store
                        .revoke_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
                        .await
                }
            }
        })
        .await
        .into_iter()
        .filter(|outcome| *outcome.as_ref().unwrap())
        .count()
    };
    assert_eq!(took_effect(true).await, 1, "granted once");
    assert_eq!(store.roles(&user(USERNAME)).await.unwrap(), ["FATCA"]);
    assert_eq!(took_effect(false).await, 1, "revoked once");
    assert!(store.roles(&user(USERNAME)).await.unwrap().is_empty());
    assert!(
        store
            .held_role_since(
                &user(USERNAME),
                &service("FATCA"),
                OffsetDateTime::now_utc() - time::Duration::HOUR
            )
            .await
            .unwrap()
    );
}

/// While replication replaces the replicated roles back and forth, a reader sees one whole
/// set or the other, never a mixture.
pub async fn a_reader_sees_the_old_replicated_roles_or_the_new<S: IdentityStore + RoleStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let old = ["CPS", "FATCA"];
    let new = ["AKFA", "CRS"];
    store
        .replace_replicated_roles(&replicated(&old))
        .await
        .unwrap();
    let writer = {
        let store = Arc::clone(&store);
        let (old, new) = (replicated(&old), replicated(&new));
        tokio::spawn(async move {
            for _ in 0..20 {
                store.replace_replicated_roles(&new).await.unwrap();
                store.replace_replicated_roles(&old).await.unwrap();
            }
        })
    };
    watch(vec![writer], async || {
        let roles = store.roles(&user(USERNAME)).await.unwrap();
        assert!(roles == old || roles == new, "{roles:?}");
        false
    })
    .await;
    assert_eq!(store.roles(&user(USERNAME)).await.unwrap(), old);
}
