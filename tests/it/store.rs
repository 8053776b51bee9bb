//! The store conformance suite: the same behaviour from SQLite and PostgreSQL.

use akaid::aka::{Amf, Sqn};
use akaid::ids::Impi;
use akaid::store::StoreError;

use crate::support::{TestDb, hss, subscriber};

mod clients;
mod grants;
mod signing_keys;

fn impi(text: &str) -> Impi {
    text.parse().unwrap()
}

async fn insert_then_read_back(db: TestDb) {
    let hss = hss(&db);
    let mut sub = subscriber("alice@ims.example.org");
    sub.msisdn = Some("+447700900001".parse().unwrap());
    sub.amf = Amf([0x12, 0x34]);
    sub.sqn = Sqn::from_parts(5, 7).unwrap();
    hss.add(&sub).await.unwrap();
    let info = db.store.subscribers.info(&sub.impi).await.unwrap().unwrap();
    assert_eq!(info.impi, sub.impi);
    assert_eq!(info.msisdn, sub.msisdn);
    assert_eq!(info.amf, Amf([0x12, 0x34]));
    assert_eq!(info.sqn, Sqn::from_parts(5, 7).unwrap());
    assert!(
        db.store
            .subscribers
            .info(&impi("bob@x"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(db.store.subscribers.count().await.unwrap(), 1);
}

async fn duplicate_impi_or_msisdn_is_refused_and_changes_nothing(db: TestDb) {
    let hss = hss(&db);
    let mut a = subscriber("alice@x");
    a.msisdn = Some("+4411".parse().unwrap());
    hss.add(&a).await.unwrap();
    let before = db.store.subscribers.info(&a.impi).await.unwrap();

    let mut again = subscriber("alice@x");
    again.sqn = Sqn::from_parts(99, 0).unwrap();
    match hss.add(&again).await {
        Err(akaid::hss::HssError::Store(StoreError::Duplicate { what: "IMPI", key })) => {
            assert_eq!(key, "alice@x")
        }
        other => panic!("expected a duplicate IMPI, got {other:?}"),
    }
    let mut same_phone = subscriber("bob@x");
    same_phone.msisdn = a.msisdn.clone();
    match hss.add(&same_phone).await {
        Err(akaid::hss::HssError::Store(StoreError::Duplicate { what: "MSISDN", .. })) => {}
        other => panic!("expected a duplicate MSISDN, got {other:?}"),
    }
    assert_eq!(db.store.subscribers.info(&a.impi).await.unwrap(), before);
    assert_eq!(db.store.subscribers.count().await.unwrap(), 1);
}

async fn list_pages_in_impi_order(db: TestDb) {
    let hss = hss(&db);
    for name in ["carol@x", "alice@x", "bob@x", "Dave@x"] {
        hss.add(&subscriber(name)).await.unwrap();
    }
    let first = db.store.subscribers.list(None, 2).await.unwrap();
    let names: Vec<_> = first.iter().map(|s| s.impi.to_string()).collect();
    assert_eq!(names, ["Dave@x", "alice@x"], "byte order, upper case first");
    let rest = db
        .store
        .subscribers
        .list(Some(&first[1].impi), 10)
        .await
        .unwrap();
    let names: Vec<_> = rest.iter().map(|s| s.impi.to_string()).collect();
    assert_eq!(names, ["bob@x", "carol@x"]);
}

async fn remove_reports_whether_it_removed(db: TestDb) {
    let hss = hss(&db);
    hss.add(&subscriber("alice@x")).await.unwrap();
    assert!(db.store.subscribers.remove(&impi("alice@x")).await.unwrap());
    assert!(!db.store.subscribers.remove(&impi("alice@x")).await.unwrap());
    assert_eq!(db.store.subscribers.count().await.unwrap(), 0);
}

async fn advance_sqn_steps_seq_and_ind(db: TestDb) {
    let hss = hss(&db);
    let mut sub = subscriber("alice@x");
    sub.sqn = Sqn::from_parts(41, 31).unwrap();
    hss.add(&sub).await.unwrap();
    let keys = db
        .store
        .subscribers
        .advance_sqn(&sub.impi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.sqn, Sqn::from_parts(42, 0).unwrap());
    assert_eq!(keys.sqn, sub.sqn.next());
    let keys = db
        .store
        .subscribers
        .advance_sqn(&sub.impi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.sqn, Sqn::from_parts(43, 1).unwrap());
    let info = db.store.subscribers.info(&sub.impi).await.unwrap().unwrap();
    assert_eq!(info.sqn, keys.sqn, "the stored SQN is the last one used");
    assert!(
        db.store
            .subscribers
            .advance_sqn(&impi("nobody@x"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn advance_sqn_wraps_seq_at_48_bits(db: TestDb) {
    let hss = hss(&db);
    let mut sub = subscriber("alice@x");
    sub.sqn = Sqn::from_parts(akaid::aka::SEQ_MAX, 4).unwrap();
    hss.add(&sub).await.unwrap();
    let keys = db
        .store
        .subscribers
        .advance_sqn(&sub.impi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.sqn, sub.sqn.next());
    assert_eq!(keys.sqn, Sqn::from_parts(0, 5).unwrap());
}

async fn raise_sqn_never_lowers(db: TestDb) {
    let hss = hss(&db);
    let mut sub = subscriber("alice@x");
    sub.sqn = Sqn::from_parts(100, 3).unwrap();
    hss.add(&sub).await.unwrap();
    let s = &db.store.subscribers;
    let lower = Sqn::from_parts(50, 9).unwrap();
    assert_eq!(s.raise_sqn(&sub.impi, lower).await.unwrap(), Some(sub.sqn));
    let higher = Sqn::from_parts(200, 1).unwrap();
    assert_eq!(s.raise_sqn(&sub.impi, higher).await.unwrap(), Some(higher));
    assert_eq!(s.info(&sub.impi).await.unwrap().unwrap().sqn, higher);
    assert_eq!(s.raise_sqn(&impi("nobody@x"), higher).await.unwrap(), None);
}

async fn insert_all_stores_everything(db: TestDb) {
    let hss = hss(&db);
    let rows: Vec<_> = (0..1234)
        .map(|i| {
            let mut sub = subscriber(&format!("user{i:05}@x"));
            sub.msisdn = Some(format!("+44770{i:06}").parse().unwrap());
            hss.seal(&sub)
        })
        .collect();
    let seen = std::sync::Mutex::new(Vec::new());
    hss.add_all(&rows, &|n| seen.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(db.store.subscribers.count().await.unwrap(), 1234);
    assert_eq!(*seen.lock().unwrap(), [500, 1000, 1234]);
    // Sealed keys were stored as sealed and open for their row.
    let v = hss
        .vector(&impi("user01233@x"), akaid::aka::Rand([1; 16]))
        .await
        .unwrap();
    assert_eq!(v.sqn, Sqn::default().next());
}

async fn insert_all_is_all_or_nothing(db: TestDb) {
    let hss = hss(&db);
    let mut existing = subscriber("user00700@x");
    existing.msisdn = Some("+449".parse().unwrap());
    hss.add(&existing).await.unwrap();
    let rows: Vec<_> = (0..1000)
        .map(|i| hss.seal(&subscriber(&format!("user{i:05}@x"))))
        .collect();
    match hss.add_all(&rows, &|_| {}).await {
        Err(akaid::hss::HssError::Store(StoreError::DuplicateInBatch { index, what, key })) => {
            assert_eq!((index, what, key.as_str()), (700, "IMPI", "user00700@x"));
        }
        other => panic!("expected a duplicate at row 700, got {other:?}"),
    }
    assert_eq!(
        db.store.subscribers.count().await.unwrap(),
        1,
        "nothing was stored"
    );

    // A collision inside the batch itself, and one on MSISDN.
    let mut a = subscriber("a@x");
    a.msisdn = Some("+4410".parse().unwrap());
    let mut b = subscriber("b@x");
    b.msisdn = Some("+4410".parse().unwrap());
    let rows = [hss.seal(&a), hss.seal(&b)];
    match hss.add_all(&rows, &|_| {}).await {
        Err(akaid::hss::HssError::Store(StoreError::DuplicateInBatch {
            index: 1,
            what: "MSISDN",
            ..
        })) => {}
        other => panic!("expected an MSISDN collision at row 1, got {other:?}"),
    }
    let mut c = subscriber("c@x");
    c.msisdn = existing.msisdn.clone();
    match hss.add_all(&[hss.seal(&c)], &|_| {}).await {
        Err(akaid::hss::HssError::Store(StoreError::DuplicateInBatch {
            index: 0,
            what: "MSISDN",
            ..
        })) => {}
        other => panic!("expected an MSISDN collision with the database, got {other:?}"),
    }
    assert_eq!(db.store.subscribers.count().await.unwrap(), 1);
}

async fn meta_get_or_insert_keeps_the_first_value(db: TestDb) {
    let meta = &db.store.meta;
    assert_eq!(meta.get("k").await.unwrap(), None);
    assert_eq!(meta.get_or_insert("k", b"first").await.unwrap(), b"first");
    assert_eq!(meta.get_or_insert("k", b"second").await.unwrap(), b"first");
    assert_eq!(meta.get("k").await.unwrap().as_deref(), Some(&b"first"[..]));
}

fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

fn session(btid: &str, impi_text: &str, created: i64) -> akaid::store::BootstrapRow {
    akaid::store::BootstrapRow {
        btid: btid.to_owned(),
        impi: impi(impi_text),
        rand: [created as u8; 16],
        ks_sealed: vec![1, 2, 3],
        created_at: at(created),
        expires_at: at(created + 3600),
    }
}

async fn a_new_session_supersedes_the_impis_older_ones(db: TestDb) {
    let b = &db.store.bootstraps;
    b.insert_superseding(&session("one@bsf", "alice@x", 1))
        .await
        .unwrap();
    b.insert_superseding(&session("other@bsf", "bob@x", 2))
        .await
        .unwrap();
    b.insert_superseding(&session("two@bsf", "alice@x", 3))
        .await
        .unwrap();
    let alice = b.for_impi(&impi("alice@x")).await.unwrap();
    assert_eq!(alice, vec![session("two@bsf", "alice@x", 3)]);
    assert!(b.get("one@bsf").await.unwrap().is_none());
    assert_eq!(
        b.for_impi(&impi("bob@x")).await.unwrap().len(),
        1,
        "other IMPIs keep theirs"
    );
    assert_eq!(b.sweep(at(3600 + 3)).await.unwrap(), 1, "bob's expired");
    assert_eq!(
        b.get("two@bsf").await.unwrap(),
        Some(session("two@bsf", "alice@x", 3))
    );
}

async fn a_challenge_is_taken_once(db: TestDb) {
    let c = &db.store.challenges;
    let row = akaid::store::ChallengeRow {
        nonce: "bm9uY2U=".into(),
        impi: "alice@x".into(),
        opaque: "00ff".into(),
        secrets_sealed: Some(vec![9; 40]),
        expires_at: at(30),
    };
    c.insert(&row).await.unwrap();
    let decoy = akaid::store::ChallengeRow {
        nonce: "ZGVjb3k=".into(),
        secrets_sealed: None,
        ..row.clone()
    };
    c.insert(&decoy).await.unwrap();
    assert_eq!(c.take(&row.nonce).await.unwrap(), Some(row.clone()));
    assert_eq!(c.take(&row.nonce).await.unwrap(), None, "single use");
    assert_eq!(c.sweep(at(31)).await.unwrap(), 1);
    assert_eq!(c.take(&decoy.nonce).await.unwrap(), None);
}

async fn rate_windows_count_and_reset(db: TestDb) {
    let r = &db.store.rates;
    assert_eq!(r.hit("k", 60).await.unwrap(), 1);
    assert_eq!(r.hit("k", 60).await.unwrap(), 2);
    assert_eq!(r.hit("other", 60).await.unwrap(), 1);
    assert_eq!(
        r.hit("k", 120).await.unwrap(),
        1,
        "a new window starts at 1"
    );
}

async fn concurrent_takes_of_one_challenge_have_one_winner(db: TestDb) {
    let row = akaid::store::ChallengeRow {
        nonce: "contested".into(),
        impi: "alice@x".into(),
        opaque: "o".into(),
        secrets_sealed: Some(vec![1, 2, 3]),
        expires_at: at(200_000_000),
    };
    db.store.challenges.insert(&row).await.unwrap();
    let takers = (0..64).map(|_| {
        let c = db.store.challenges.clone();
        tokio::spawn(async move { c.take("contested").await.unwrap() })
    });
    let mut winners = 0;
    for t in takers {
        if let Some(taken) = t.await.unwrap() {
            assert_eq!(taken, row);
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn login_sessions_create_load_expire_delete(db: TestDb) {
    let s = &db.store.login_sessions;
    assert!(s.create("id1", b"one", at(200)).await.unwrap());
    assert!(
        !s.create("id1", b"other", at(200)).await.unwrap(),
        "an id is taken once"
    );
    assert_eq!(
        s.load("id1", at(100)).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    s.save("id1", b"two", at(300)).await.unwrap();
    assert_eq!(
        s.load("id1", at(250)).await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(s.load("id1", at(300)).await.unwrap(), None, "expired");
    assert_eq!(s.sweep(at(301)).await.unwrap(), 1);
    s.save("id2", b"x", at(300)).await.unwrap();
    s.delete("id2").await.unwrap();
    assert_eq!(s.load("id2", at(100)).await.unwrap(), None);
}

async fn ua_nonce_counts_are_accepted_once_and_expire(db: TestDb) {
    use akaid::store::NonceUse;
    let n = &db.store.ua_nonces;
    n.issue("n1", at(100)).await.unwrap();
    assert_eq!(
        n.use_count("n1", 1, at(50)).await.unwrap(),
        NonceUse::Accepted
    );
    assert_eq!(
        n.use_count("n1", 1, at(50)).await.unwrap(),
        NonceUse::Replayed
    );
    assert_eq!(
        n.use_count("n1", 3, at(50)).await.unwrap(),
        NonceUse::Accepted
    );
    assert_eq!(
        n.use_count("n1", 2, at(50)).await.unwrap(),
        NonceUse::Replayed
    );
    assert_eq!(
        n.use_count("n1", 4, at(101)).await.unwrap(),
        NonceUse::Expired
    );
    assert_eq!(
        n.use_count("nope", 1, at(50)).await.unwrap(),
        NonceUse::Unknown
    );
    assert_eq!(n.sweep(at(101)).await.unwrap(), 1);
    assert_eq!(
        n.use_count("n1", 5, at(50)).await.unwrap(),
        NonceUse::Unknown
    );
}

async fn associations_expire_and_response_nonces_verify_once(db: TestDb) {
    let o = &db.store.openid2;
    let row = akaid::store::AssociationRow {
        handle: "h1".into(),
        assoc_type: "HMAC-SHA256".into(),
        secret_sealed: vec![9; 40],
        private: true,
        expires_at: at(100),
    };
    o.insert_association(&row).await.unwrap();
    assert_eq!(o.association("h1", at(99)).await.unwrap(), Some(row));
    assert_eq!(o.association("h1", at(100)).await.unwrap(), None, "expired");
    assert!(
        o.record_nonce("2026-01-01T00:00:00Zabc", at(100))
            .await
            .unwrap()
    );
    assert!(
        !o.record_nonce("2026-01-01T00:00:00Zabc", at(100))
            .await
            .unwrap()
    );
    assert_eq!(o.sweep(at(101)).await.unwrap(), 2);
    assert!(!o.remove_association("h1").await.unwrap());
}

async fn consents_are_per_subscriber_and_relying_party(db: TestDb) {
    use akaid::store::ConsentRow;
    let c = &db.store.consents;
    let alice = impi("alice@x");
    let row = ConsentRow {
        impi: alice.clone(),
        relying_party: "openid2:http://rp.example/".into(),
        shared: "identifier phone".into(),
        created_at: at(10),
    };
    c.put(&row).await.unwrap();
    assert_eq!(
        c.get(&alice, &row.relying_party).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(
        c.get(&impi("bob@x"), &row.relying_party).await.unwrap(),
        None
    );
    let again = ConsentRow {
        shared: "identifier".into(),
        ..row.clone()
    };
    c.put(&again).await.unwrap();
    assert_eq!(c.list(&alice).await.unwrap(), vec![again]);
    assert!(c.remove(&alice, &row.relying_party).await.unwrap());
    assert!(c.list(&alice).await.unwrap().is_empty());
}

async fn realm_policies_replace_and_list(db: TestDb) {
    use akaid::store::{RealmPolicy, RealmPolicyRow};
    let p = &db.store.realm_policies;
    let row = RealmPolicyRow {
        realm: "https://*.example.com/".into(),
        policy: RealmPolicy::Allow,
        stable_identifier: true,
        created_at: at(5),
    };
    p.put(&row).await.unwrap();
    let deny = RealmPolicyRow {
        policy: RealmPolicy::Deny,
        stable_identifier: false,
        ..row.clone()
    };
    p.put(&deny).await.unwrap();
    assert_eq!(p.get(&row.realm).await.unwrap(), Some(deny.clone()));
    assert_eq!(p.list().await.unwrap(), vec![deny]);
    assert!(p.remove(&row.realm).await.unwrap());
    assert_eq!(p.get(&row.realm).await.unwrap(), None);
}

async fn profiles_set_clear_and_go_with_the_subscriber(db: TestDb) {
    use akaid::profile::ProfileField;
    let hss = hss(&db);
    let sub = subscriber("alice@x");
    hss.add(&sub).await.unwrap();
    let p = &db.store.profiles;
    assert!(p.profile(&sub.impi).await.unwrap().is_empty());
    assert!(
        p.set_profile_field(&sub.impi, ProfileField::Email, Some("a@example.org"))
            .await
            .unwrap()
    );
    assert!(
        p.set_profile_field(&sub.impi, ProfileField::Email, Some("b@example.org"))
            .await
            .unwrap()
    );
    assert!(
        p.set_profile_field(&sub.impi, ProfileField::Country, Some("GB"))
            .await
            .unwrap()
    );
    let profile = p.profile(&sub.impi).await.unwrap();
    assert_eq!(profile.len(), 2);
    assert_eq!(profile[&ProfileField::Email], "b@example.org");
    assert!(
        p.set_profile_field(&sub.impi, ProfileField::Email, None)
            .await
            .unwrap()
    );
    assert_eq!(p.profile(&sub.impi).await.unwrap().len(), 1);
    // No such subscriber: nothing stored.
    let bob = impi("bob@x");
    assert!(
        !p.set_profile_field(&bob, ProfileField::Email, Some("b@example.org"))
            .await
            .unwrap()
    );
    assert!(
        !p.set_profile_field(&bob, ProfileField::Email, None)
            .await
            .unwrap()
    );
    assert!(p.profile(&bob).await.unwrap().is_empty());
    // Removing the subscriber removes the profile and the consents.
    db.store
        .consents
        .put(&akaid::store::ConsentRow {
            impi: sub.impi.clone(),
            relying_party: "oidc:client".into(),
            shared: "identifier".into(),
            created_at: at(1),
        })
        .await
        .unwrap();
    assert!(db.store.subscribers.remove(&sub.impi).await.unwrap());
    assert!(p.profile(&sub.impi).await.unwrap().is_empty());
    assert!(db.store.consents.list(&sub.impi).await.unwrap().is_empty());
}

crate::on_both_databases!(
    profiles_set_clear_and_go_with_the_subscriber,
    concurrent_takes_of_one_challenge_have_one_winner,
    login_sessions_create_load_expire_delete,
    ua_nonce_counts_are_accepted_once_and_expire,
    associations_expire_and_response_nonces_verify_once,
    consents_are_per_subscriber_and_relying_party,
    realm_policies_replace_and_list,
    a_new_session_supersedes_the_impis_older_ones,
    a_challenge_is_taken_once,
    rate_windows_count_and_reset,
    insert_then_read_back,
    duplicate_impi_or_msisdn_is_refused_and_changes_nothing,
    list_pages_in_impi_order,
    remove_reports_whether_it_removed,
    advance_sqn_steps_seq_and_ind,
    advance_sqn_wraps_seq_at_48_bits,
    raise_sqn_never_lowers,
    insert_all_stores_everything,
    insert_all_is_all_or_nothing,
    meta_get_or_insert_keeps_the_first_value,
);
