//! The HSS over a real database: SQN under concurrency, re-synchronisation, sealing.

use std::collections::HashSet;

use akaid::aka::{Rand, ResyncError, Sqn, SubscriberKeys, UsimError, UsimState};
use akaid::hss::HssError;
use akaid::secret::SealError;

use crate::support::{TestDb, hss, subscriber};

fn usim_keys() -> SubscriberKeys {
    crate::support::test_keys()
}

/// 8 tasks × 500 vectors for one subscriber: 4,000 distinct SQNs, and a USIM accepts every
/// vector when it gets them in the order they were issued.
async fn concurrent_vectors_get_distinct_fresh_sqns(db: TestDb) {
    let hss = hss(&db);
    let sub = subscriber("alice@x");
    hss.add(&sub).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let hss = hss.clone();
        let impi = sub.impi.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(500);
            for i in 0..500u16 {
                let mut rand = [t; 16];
                rand[..2].copy_from_slice(&i.to_be_bytes());
                out.push(hss.vector(&impi, Rand(rand)).await.unwrap());
            }
            out
        }));
    }
    let mut vectors = Vec::new();
    for task in tasks {
        vectors.extend(task.await.unwrap());
    }
    let sqns: HashSet<Sqn> = vectors.iter().map(|v| v.sqn).collect();
    assert_eq!(sqns.len(), 4000, "every vector has its own SQN");

    // The database serialises the increments: issue order is SQN order.
    vectors.sort_by_key(|v| v.sqn);
    let mut expected = Sqn::default();
    for v in &vectors {
        expected = expected.next();
        assert_eq!(v.sqn, expected, "no SQN skipped or repeated");
    }
    let keys = usim_keys();
    let mut usim = UsimState::default();
    for v in &vectors {
        usim.authenticate(&keys, v.rand, &v.autn)
            .unwrap_or_else(|e| panic!("USIM refused SQN {}: {e}", v.sqn));
    }
    let stored = db
        .store
        .subscribers
        .info(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(stored, expected);
}

/// A USIM that is ahead of the HSS answers with AUTS; after the resync the next vector is
/// accepted.
async fn resync_from_a_usim_ahead(db: TestDb) {
    let hss = hss(&db);
    let sub = subscriber("alice@x");
    hss.add(&sub).await.unwrap();
    let keys = usim_keys();
    let mut usim = UsimState::at(Sqn::from_parts(5000, 17).unwrap());

    let v = hss.vector(&sub.impi, Rand([1; 16])).await.unwrap();
    let Err(UsimError::SyncFailure(auts)) = usim.authenticate(&keys, v.rand, &v.autn) else {
        panic!("a USIM ahead of the HSS must refuse with AUTS");
    };
    let sqn_ms = hss.resync(&sub.impi, v.rand, &auts).await.unwrap();
    assert_eq!(sqn_ms, Sqn::from_parts(5000, 17).unwrap());
    let stored = db
        .store
        .subscribers
        .info(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(stored, sqn_ms);

    let v = hss.vector(&sub.impi, Rand([2; 16])).await.unwrap();
    assert_eq!(v.sqn, sqn_ms.next());
    usim.authenticate(&keys, v.rand, &v.autn).unwrap();

    // A replay of the old AUTS changes nothing: SQN never goes down.
    hss.resync(&sub.impi, Rand([1; 16]), &auts).await.unwrap();
    let after = db
        .store
        .subscribers
        .info(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(after, v.sqn);
}

async fn forged_auts_leaves_the_sqn_alone(db: TestDb) {
    let hss = hss(&db);
    let sub = subscriber("alice@x");
    hss.add(&sub).await.unwrap();
    let keys = usim_keys();
    let mut usim = UsimState::at(Sqn::from_parts(5000, 17).unwrap());
    let v = hss.vector(&sub.impi, Rand([1; 16])).await.unwrap();
    let Err(UsimError::SyncFailure(mut auts)) = usim.authenticate(&keys, v.rand, &v.autn) else {
        panic!("expected AUTS");
    };
    let before = db
        .store
        .subscribers
        .info(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    auts.0[2] ^= 0x40; // claim a much higher SQN_MS
    assert!(matches!(
        hss.resync(&sub.impi, v.rand, &auts).await,
        Err(HssError::Resync(ResyncError::MacS))
    ));
    auts.0[2] ^= 0x40;
    assert!(
        matches!(
            hss.resync(&sub.impi, Rand([9; 16]), &auts).await,
            Err(HssError::Resync(ResyncError::MacS))
        ),
        "a genuine AUTS for another RAND is refused too"
    );
    let after = db
        .store
        .subscribers
        .info(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(after, before);
}

async fn unknown_impi_is_named(db: TestDb) {
    let hss = hss(&db);
    let impi = "nobody@x".parse().unwrap();
    let err = hss.vector(&impi, Rand([0; 16])).await.unwrap_err();
    assert_eq!(err.to_string(), "no subscriber with IMPI nobody@x");
}

/// Runs a statement on whichever database the test has.
async fn exec(db: &TestDb, sql: &str) {
    if let Some(s) = &db.sqlite {
        sqlx::query(sql).execute(s.pool()).await.unwrap();
    }
    if let Some(p) = &db.pg {
        sqlx::query(sql).execute(p.pool()).await.unwrap();
    }
}

async fn swapped_sealed_keys_do_not_open(db: TestDb) {
    let hss = hss(&db);
    hss.add(&subscriber("alice@x")).await.unwrap();
    let mut bob = subscriber("bob@x");
    bob.keys = SubscriberKeys::new([7; 16], [8; 16]);
    hss.add(&bob).await.unwrap();
    // Copy alice's sealed K over bob's: the associated data (row key) no longer matches.
    exec(
        &db,
        "UPDATE subscribers SET k_sealed = (SELECT k_sealed FROM subscribers WHERE impi = 'alice@x') \
         WHERE impi = 'bob@x'",
    )
    .await;
    match hss.vector(&bob.impi, Rand([0; 16])).await {
        Err(HssError::Seal(SealError::DoesNotOpen(what))) => {
            assert!(
                what.contains("subscribers.k") && what.contains("bob@x"),
                "{what}"
            );
        }
        other => panic!("expected a sealing error, got {other:?}"),
    }
    // K and OPc of one row cannot be swapped either.
    exec(
        &db,
        "UPDATE subscribers SET k_sealed = opc_sealed WHERE impi = 'alice@x'",
    )
    .await;
    let alice = "alice@x".parse().unwrap();
    assert!(matches!(
        hss.vector(&alice, Rand([0; 16])).await,
        Err(HssError::Seal(SealError::DoesNotOpen(_)))
    ));
}

async fn truncated_sealed_key_is_a_clear_error(db: TestDb) {
    let hss = hss(&db);
    hss.add(&subscriber("alice@x")).await.unwrap();
    exec(
        &db,
        "UPDATE subscribers SET opc_sealed = substr(opc_sealed, 1, 10)",
    )
    .await;
    let alice = "alice@x".parse().unwrap();
    let err = hss.vector(&alice, Rand([0; 16])).await.unwrap_err();
    assert!(
        matches!(err, HssError::Seal(SealError::Truncated(_, 10))),
        "{err:?}"
    );
    assert!(err.to_string().contains("subscribers.opc"), "{err}");
}

async fn wrong_master_key_cannot_open_keys(db: TestDb) {
    let hss = hss(&db);
    hss.add(&subscriber("alice@x")).await.unwrap();
    let other = akaid::hss::Hss::new(
        db.store.subscribers.clone(),
        std::sync::Arc::new(akaid::secret::Sealer::new(&akaid::secret::Secret::new(
            [1; 32],
        ))),
        std::sync::Arc::new(akaid::clock::SystemClock),
    );
    let alice = "alice@x".parse().unwrap();
    assert!(matches!(
        other.vector(&alice, Rand([0; 16])).await,
        Err(HssError::Seal(SealError::DoesNotOpen(_)))
    ));
}

crate::on_both_databases!(
    concurrent_vectors_get_distinct_fresh_sqns,
    resync_from_a_usim_ahead,
    forged_auts_leaves_the_sqn_alone,
    unknown_impi_is_named,
    swapped_sealed_keys_do_not_open,
    truncated_sealed_key_is_a_clear_error,
    wrong_master_key_cannot_open_keys,
);
