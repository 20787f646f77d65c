//! Checks of [`MailboxStore`]: each user's `/out`, and files replaced in it.

use std::sync::Arc;

use mftgw_domain::status::StatusCode;
use mftgw_domain::{BlobKey, Cvr, Mailbox, TransactionState};

use super::{
    RECEIVED_AT, USERNAME, add_other_user, blob_key_for, created, inline, names, race,
    registration, step, upload, user, watch, with_user,
};
use crate::{IdentityStore, MailboxStore, NewOutFile, OutContent, StoreError, TransactionLog};

/// A name is added to a user's `/out` once (the first file stays); each user has their own
/// names; deleting returns the body.
pub async fn out_files_are_per_user_and_added_once_by_name<S: IdentityStore + MailboxStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let other_user = add_other_user(&*store).await;
    let at = RECEIVED_AT;
    assert!(
        store
            .add_out_file(
                &Mailbox::of_user(&user(USERNAME)),
                inline("r.txt", "first"),
                at
            )
            .await
            .unwrap()
    );
    let blob = NewOutFile {
        name: "r.txt".into(),
        content: OutContent::Blob {
            key: blob_key_for("k1"),
            size: 9,
        },
    };
    assert!(
        !store
            .add_out_file(&Mailbox::of_user(&user(USERNAME)), blob, at)
            .await
            .unwrap(),
        "a name already in /out is left as it is"
    );
    let (entry, content) = store
        .out_file(&Mailbox::of_user(&user(USERNAME)), "r.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.size, content),
        (5, OutContent::Inline(b"first".to_vec()))
    );
    assert!(
        store
            .out_file(&Mailbox::of_user(&user(other_user)), "r.txt")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .out_files(&Mailbox::of_user(&user(other_user)))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .add_out_file(
                &Mailbox::of_user(&user(other_user)),
                inline("r.txt", "theirs"),
                at
            )
            .await
            .unwrap(),
        "names are per user"
    );
    assert_eq!(
        store
            .delete_out_file(&Mailbox::of_user(&user(other_user)), "r.txt")
            .await
            .unwrap(),
        Some(OutContent::Inline(b"theirs".to_vec()))
    );
    assert_eq!(
        store
            .delete_out_file(&Mailbox::of_user(&user(USERNAME)), "r.txt")
            .await
            .unwrap(),
        Some(OutContent::Inline(b"first".to_vec()))
    );
    assert!(
        store
            .out_files(&Mailbox::of_user(&user(USERNAME)))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A listing has every name exactly as given, in the order the files came, with sizes and
/// times; an unknown user has none.
pub async fn a_listing_returns_names_exactly_in_the_order_they_came<
    S: IdentityStore + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let names_put = ["b.xml", "\"quoted\" \\ æøå 日本.xml", "a.xml"];
    for (second, name) in names_put.iter().enumerate() {
        let at = RECEIVED_AT + time::Duration::seconds(second as i64);
        store
            .add_out_file(&Mailbox::of_user(&user(USERNAME)), inline(name, "body"), at)
            .await
            .unwrap();
    }
    let listed = store
        .out_files(&Mailbox::of_user(&user(USERNAME)))
        .await
        .unwrap();
    assert_eq!(names(&listed), names_put);
    assert!(listed.iter().all(|entry| entry.size == 4));
    assert_eq!(
        listed[2].created_at,
        RECEIVED_AT + time::Duration::seconds(2)
    );
    assert!(
        store
            .out_files(&Mailbox::of_user(&user("CVR_12345678_UID_2")))
            .await
            .is_err(),
        "no such user"
    );
}

/// Racing additions of one name to one `/out` add one file: the first addition's.
pub async fn racing_additions_of_one_name_add_one_file<S: IdentityStore + MailboxStore>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let outcomes = race(8, |n| {
        let store = Arc::clone(&store);
        async move {
            let body = format!("body {n}");
            let added = store
                .add_out_file(
                    &Mailbox::of_user(&user(USERNAME)),
                    inline("r.txt", &body),
                    RECEIVED_AT,
                )
                .await
                .unwrap();
            (added, body)
        }
    })
    .await;
    let added: Vec<String> = outcomes
        .into_iter()
        .filter_map(|(added, body)| added.then_some(body))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        ["r.txt"]
    );
    let (_, content) = store
        .out_file(&Mailbox::of_user(&user(USERNAME)), "r.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(content, OutContent::Inline(added[0].clone().into_bytes()));
}

/// While steps replace a file in `/out` again and again, a reader finds the old file or the
/// new one, never neither, and never two.
pub async fn a_replaced_file_is_never_missing_from_out<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let mut steps = Vec::new();
    for i in 0..30 {
        let transaction = created(
            store
                .record_transaction(upload(&format!("ci{i}"), &format!("{i}.xml")))
                .await
                .unwrap(),
        );
        let mut delivered = step(
            &transaction,
            TransactionState::Delivered,
            StatusCode::Delivered,
        );
        delivered.files = vec![NewOutFile {
            name: "answer.xml".into(),
            content: OutContent::Blob {
                key: blob_key_for(&format!("answer{i}")),
                size: 1,
            },
        }];
        steps.push(delivered);
    }
    let first = steps.remove(0);
    store.advance(&[first]).await.unwrap();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut replaced = Vec::new();
            for step in steps {
                replaced.extend(store.advance(&[step]).await.unwrap().replaced_blobs);
            }
            replaced
        })
    };
    let replaced = watch(vec![writer], async || {
        assert!(
            store
                .out_file(&Mailbox::of_user(&user(USERNAME)), "answer.xml")
                .await
                .unwrap()
                .is_some(),
            "answer.xml is missing"
        );
        let listed = store
            .out_files(&Mailbox::of_user(&user(USERNAME)))
            .await
            .unwrap();
        assert_eq!(
            names(&listed)
                .iter()
                .filter(|name| **name == "answer.xml")
                .count(),
            1,
            "{listed:?}"
        );
        false
    })
    .await
    .concat();
    let expected: Vec<BlobKey> = (0..29)
        .map(|i| blob_key_for(&format!("answer{i}")))
        .collect();
    assert_eq!(replaced, expected);
    let (_, last) = store
        .out_file(&Mailbox::of_user(&user(USERNAME)), "answer.xml")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(last, OutContent::Blob { ref key, .. } if *key == blob_key_for("answer29")));
}

/// Every company with a user has one mailbox (the legacy profile's `out`), which all its
/// users share and no other company sees; a company without users has none.
pub async fn a_company_mailbox_is_shared_by_its_users_and_no_one_else<
    S: IdentityStore + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    add_other_user(&*store).await;
    store
        .register_certificate(registration("CVR_87654321_UID_9", "dd44", "hmac-sha256:09"))
        .await
        .unwrap();
    let company = Mailbox::Company(Cvr::parse("12345678").unwrap());
    let other_company = Mailbox::Company(Cvr::parse("87654321").unwrap());
    assert!(
        store
            .add_out_file(&company, inline("shared.xml", "x"), RECEIVED_AT)
            .await
            .unwrap()
    );
    assert_eq!(
        names(&store.out_files(&company).await.unwrap()),
        ["shared.xml"]
    );
    assert!(store.out_files(&other_company).await.unwrap().is_empty());
    assert!(
        store
            .out_files(&Mailbox::of_user(&user(USERNAME)))
            .await
            .unwrap()
            .is_empty(),
        "the company's mailbox is not a user's"
    );
    let nobody = Mailbox::Company(Cvr::parse("11111111").unwrap());
    assert!(matches!(
        store
            .add_out_file(&nobody, inline("x", "x"), RECEIVED_AT)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .delete_out_file(&company, "shared.xml")
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.out_files(&company).await.unwrap().is_empty());
}

/// The mailbox of a user's latest transaction with a service is where that service's next
/// unrelated file goes; none before the first.
pub async fn the_latest_transaction_of_a_service_names_its_mailbox<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let heartbeat = super::service(super::HEARTBEAT);
    assert_eq!(
        store
            .latest_mailbox(&user(USERNAME), &heartbeat)
            .await
            .unwrap(),
        None
    );
    let company = Mailbox::Company(Cvr::parse("12345678").unwrap());
    store
        .record_transaction(upload("ci1", "a.xml"))
        .await
        .unwrap();
    let mut legacy = upload("ci2", "b.xml");
    legacy.mailbox = company.clone();
    store.record_transaction(legacy).await.unwrap();
    assert_eq!(
        store
            .latest_mailbox(&user(USERNAME), &heartbeat)
            .await
            .unwrap(),
        Some(company)
    );
    store
        .record_transaction(upload("ci3", "c.xml"))
        .await
        .unwrap();
    assert_eq!(
        store
            .latest_mailbox(&user(USERNAME), &heartbeat)
            .await
            .unwrap(),
        Some(Mailbox::of_user(&user(USERNAME)))
    );
    assert_eq!(
        store
            .latest_mailbox(&user(USERNAME), &super::service("FATCA"))
            .await
            .unwrap(),
        None,
        "another service"
    );
}
