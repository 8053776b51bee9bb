//! The signing-keys aggregate (migration 0005): one active key per alg, enforced by the
//! database; rotation in one transaction; the sweep of keys retired long enough ago.

use akaid::oidc::jose::SigningAlg;
use akaid::store::SigningKeyRow;
use time::OffsetDateTime;

use crate::support::TestDb;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

/// A row with made-up sealed bytes: the store deals in bytes and never opens them.
fn row(kid: &str, alg: SigningAlg, created: i64, retired: Option<i64>) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.to_owned(),
        alg,
        private_key_sealed: format!("sealed {kid}").into_bytes(),
        created_at: at(created),
        retired_at: retired.map(at),
    }
}

fn active_kids(rows: &[SigningKeyRow], alg: SigningAlg) -> Vec<String> {
    rows.iter()
        .filter(|r| r.alg == alg && r.retired_at.is_none())
        .map(|r| r.kid.clone())
        .collect()
}

async fn signing_keys_insert_list_retire_sweep(db: TestDb) {
    let keys = &db.store.signing_keys;
    assert!(keys.list().await.unwrap().is_empty());
    let old = row("rsa-0", SigningAlg::RS256, 0, Some(10));
    let rsa = row("rsa-1", SigningAlg::RS256, 10, None);
    let ec = row("ec-1", SigningAlg::ES256, 20, None);
    for r in [&old, &rsa, &ec] {
        assert!(keys.insert(r).await.unwrap(), "{}", r.kid);
    }
    // A second active RS256 key, or a kid that exists, stores nothing.
    assert!(
        !keys
            .insert(&row("rsa-2", SigningAlg::RS256, 30, None))
            .await
            .unwrap()
    );
    assert!(
        !keys
            .insert(&row("ec-1", SigningAlg::EdDSA, 30, None))
            .await
            .unwrap()
    );
    assert_eq!(
        keys.list().await.unwrap(),
        vec![old.clone(), rsa.clone(), ec.clone()]
    );

    assert!(keys.retire("rsa-1", at(40)).await.unwrap());
    assert!(!keys.retire("rsa-1", at(50)).await.unwrap(), "retired once");
    assert!(!keys.retire("nobody", at(50)).await.unwrap());
    let listed = keys.list().await.unwrap();
    assert_eq!(listed[1].retired_at, Some(at(40)));
    assert!(active_kids(&listed, SigningAlg::RS256).is_empty());
    // With the active key retired, a new one may be stored.
    assert!(
        keys.insert(&row("rsa-2", SigningAlg::RS256, 40, None))
            .await
            .unwrap()
    );

    // The sweep deletes keys retired before the given time, never active ones.
    assert_eq!(
        keys.sweep(at(10)).await.unwrap(),
        0,
        "retired at 10 is not before 10"
    );
    assert_eq!(keys.sweep(at(11)).await.unwrap(), 1);
    assert_eq!(keys.sweep(at(1_000_000)).await.unwrap(), 1);
    let kids: Vec<_> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kid)
        .collect();
    assert_eq!(kids, ["ec-1", "rsa-2"]);
}

async fn signing_key_rotation_retires_the_active_key_in_one_step(db: TestDb) {
    let keys = &db.store.signing_keys;
    // Rotating an alg without keys just stores the first one.
    assert!(
        keys.rotate(&row("ed-1", SigningAlg::EdDSA, 0, None), at(0))
            .await
            .unwrap()
    );
    assert!(
        keys.rotate(&row("ed-2", SigningAlg::EdDSA, 60, None), at(60))
            .await
            .unwrap()
    );
    let listed = keys.list().await.unwrap();
    assert_eq!(listed[0].kid, "ed-1");
    assert_eq!(listed[0].retired_at, Some(at(60)));
    assert_eq!(active_kids(&listed, SigningAlg::EdDSA), ["ed-2"]);
    // A rotation whose new kid exists changes nothing, not even the active key.
    assert!(
        !keys
            .rotate(&row("ed-1", SigningAlg::EdDSA, 70, None), at(70))
            .await
            .unwrap()
    );
    assert_eq!(keys.list().await.unwrap(), listed);

    // Concurrent rotations: each either wins or changes nothing; one active key remains.
    let rotations = (0..6).map(|i| {
        let keys = keys.clone();
        tokio::spawn(async move {
            let r = row(&format!("ed-r{i}"), SigningAlg::EdDSA, 100 + i, None);
            (r.kid.clone(), keys.rotate(&r, at(100 + i)).await.unwrap())
        })
    });
    let mut outcomes = Vec::new();
    for handle in rotations.collect::<Vec<_>>() {
        outcomes.push(handle.await.unwrap());
    }
    let listed = keys.list().await.unwrap();
    assert_eq!(active_kids(&listed, SigningAlg::EdDSA).len(), 1);
    assert!(outcomes.iter().any(|(_, won)| *won), "someone wins");
    for (kid, won) in outcomes {
        assert_eq!(listed.iter().any(|r| r.kid == kid), won, "{kid}");
    }
}

async fn racing_first_keys_agree_on_one(db: TestDb) {
    let inserts = (0..8).map(|i| {
        let keys = db.store.signing_keys.clone();
        tokio::spawn(async move {
            keys.insert(&row(&format!("es-{i}"), SigningAlg::ES256, i, None))
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for handle in inserts.collect::<Vec<_>>() {
        won += usize::from(handle.await.unwrap());
    }
    assert_eq!(won, 1);
    let listed = db.store.signing_keys.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(active_kids(&listed, SigningAlg::ES256).len(), 1);
}

crate::on_both_databases!(
    signing_keys_insert_list_retire_sweep,
    signing_key_rotation_retires_the_active_key_in_one_step,
    racing_first_keys_agree_on_one,
);
