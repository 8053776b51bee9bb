//! Signing keys (DESIGN.md §2.7, §3): the key ring's lifecycle on both databases, sealing bound
//! to the kid, and `akaid keys rotate|list` through the real binary.

use std::sync::Arc;

use akaid::clock::{Clock, FixedClock};
use akaid::oidc::jose::{self, JoseError, SigningAlg};
use akaid::oidc::keys::{self, KeyError, KeyRing};
use akaid::secret::{SealError, Sealer, Secret};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::support::{TestDb, akaid, sealer, stderr, stdout};

/// The default overlap: max(ID token 300 s, access token 600 s) + margin 600 s.
const OVERLAP: Duration = Duration::seconds(1200);

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    ))
}

async fn ring(db: &TestDb, clock: &Arc<FixedClock>) -> KeyRing {
    KeyRing::open(
        db.store.signing_keys.clone(),
        sealer(),
        clock.clone(),
        OVERLAP,
    )
    .await
    .unwrap()
}

fn claims(clock: &FixedClock) -> Value {
    let now = clock.now().unix_timestamp();
    json!({"iss": "https://op.example", "sub": "s", "aud": "c", "iat": now, "exp": now + 300})
}

async fn the_first_keys_are_created_once_and_signed_tokens_verify(db: TestDb) {
    let clock = clock();
    let ring = ring(&db, &clock).await;
    let jwks = ring.jwks();
    assert_eq!(jwks.keys.len(), 3);
    let algs: Vec<_> = jwks.keys.iter().map(|k| k["alg"].clone()).collect();
    assert_eq!(
        algs,
        [json!("RS256"), json!("ES256"), json!("EdDSA")],
        "RS256 first"
    );
    for alg in SigningAlg::ALL {
        let key = ring.active(alg).unwrap();
        assert_eq!(key.alg(), alg);
        let token = jose::sign_jwt(&key, Some("at+jwt"), &claims(&clock)).unwrap();
        let got = jose::verify_jwt(&ring.jwks(), &token, Some("at+jwt")).unwrap();
        jose::check_time(&got, clock.now(), Duration::ZERO).unwrap();
    }
    // Opening again (a restart) creates nothing.
    let again = self::ring(&db, &clock).await;
    assert_eq!(again.jwks(), jwks);
    assert_eq!(db.store.signing_keys.list().await.unwrap().len(), 3);
}

async fn rotation_keeps_the_old_public_key_until_the_sweep(db: TestDb) {
    let clock = clock();
    let ring = ring(&db, &clock).await;
    let old = ring.active(SigningAlg::RS256).unwrap();
    let old_token = jose::sign_jwt(&old, Some("JWT"), &claims(&clock)).unwrap();

    clock.advance(Duration::minutes(1));
    let new = ring.rotate(&[SigningAlg::RS256]).await.unwrap();
    assert_eq!(new.len(), 1);
    assert_ne!(new[0].kid(), old.kid());
    assert_eq!(ring.active(SigningAlg::RS256).unwrap().kid(), new[0].kid());
    let kids = ring
        .jwks()
        .kids()
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>();
    assert_eq!(kids.len(), 4);
    assert_eq!(kids[0], new[0].kid(), "the active key first");
    assert_eq!(kids[1], old.kid(), "the retired key still published");
    // A token the old key signed before the rotation still verifies.
    assert!(jose::verify_jwt(&ring.jwks(), &old_token, Some("JWT")).is_ok());
    let info = keys::list(db.store.signing_keys.as_ref(), OVERLAP)
        .await
        .unwrap();
    let retired = info.iter().find(|k| k.kid == old.kid()).unwrap();
    assert_eq!(retired.retired_at, Some(clock.now()));
    assert_eq!(retired.public_until, Some(clock.now() + OVERLAP));

    // Just inside the overlap nothing is removed.
    clock.advance(OVERLAP - Duration::seconds(1));
    assert_eq!(ring.sweep().await.unwrap(), 0);
    ring.reload().await.unwrap();
    assert!(ring.jwks().find(old.kid()).is_some());

    // Past it, the sweep deletes the old key and the JWKS drops it.
    clock.advance(Duration::seconds(2));
    assert_eq!(ring.sweep().await.unwrap(), 1);
    ring.reload().await.unwrap();
    assert!(ring.jwks().find(old.kid()).is_none());
    assert_eq!(ring.jwks().keys.len(), 3);
    assert!(matches!(
        jose::verify_jwt(&ring.jwks(), &old_token, None),
        Err(JoseError::UnknownKid(_))
    ));
    let stored = db.store.signing_keys.list().await.unwrap();
    assert!(stored.iter().all(|r| r.kid != old.kid()));
}

async fn rings_of_two_processes_agree_and_pick_up_rotations(db: TestDb) {
    let clock = clock();
    // Two processes starting at once on an empty database create one key per alg.
    let (a, b) = tokio::join!(ring(&db, &clock), ring(&db, &clock));
    assert_eq!(a.jwks(), b.jwks());
    assert_eq!(db.store.signing_keys.list().await.unwrap().len(), 3);
    // One of them (or `akaid keys rotate`) rotates; the other sees it at its next reload.
    clock.advance(Duration::seconds(5));
    let new = b.rotate(&[SigningAlg::ES256]).await.unwrap();
    assert_ne!(a.active(SigningAlg::ES256).unwrap().kid(), new[0].kid());
    a.reload().await.unwrap();
    assert_eq!(a.active(SigningAlg::ES256).unwrap().kid(), new[0].kid());
    assert_eq!(a.jwks(), b.jwks());
}

async fn a_sealed_key_does_not_open_under_another_kid(db: TestDb) {
    let clock = clock();
    let ring = ring(&db, &clock).await;
    let rows = db.store.signing_keys.list().await.unwrap();
    let (a, b) = (&rows[0], &rows[1]);
    let sealer = sealer();
    assert!(
        sealer
            .open(keys::seal_context(&a.kid), &a.private_key_sealed)
            .is_ok()
    );
    assert!(matches!(
        sealer.open(keys::seal_context(&b.kid), &a.private_key_sealed),
        Err(SealError::DoesNotOpen(_))
    ));
    // A row carrying another row's sealed key: the ring refuses to load rather than sign
    // under the wrong kid.
    let mut forged = a.clone();
    forged.kid = "forged".into();
    forged.retired_at = Some(clock.now());
    assert!(db.store.signing_keys.insert(&forged).await.unwrap());
    match ring.reload().await {
        Err(KeyError::Seal {
            kid,
            source: SealError::DoesNotOpen(_),
        }) => assert_eq!(kid, "forged"),
        other => panic!("expected the forged row to be refused, got {other:?}"),
    }
    // Another master key opens nothing either.
    let other = Arc::new(Sealer::new(&Secret::new([0x11; 32])));
    let err = KeyRing::open(db.store.signing_keys.clone(), other, clock.clone(), OVERLAP)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::Seal { .. }), "{err}");
}

crate::on_both_databases!(
    the_first_keys_are_created_once_and_signed_tokens_verify,
    rotation_keeps_the_old_public_key_until_the_sweep,
    rings_of_two_processes_agree_and_pick_up_rotations,
    a_sealed_key_does_not_open_under_another_kid,
);

fn list_json(dir: &std::path::Path) -> Vec<Value> {
    let out = akaid(dir, &["keys", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn keys_cli_rotates_and_lists_without_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert!(list_json(dir.path()).is_empty(), "listing creates nothing");

    let out = akaid(dir.path(), &["keys", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(text.contains(&format!("{alg}: new active key ")), "{text}");
    }
    let first = list_json(dir.path());
    assert_eq!(first.len(), 3);
    assert!(
        first
            .iter()
            .all(|k| k["active"] == json!(true) && k["retired_at"].is_null())
    );

    let out = akaid(dir.path(), &["keys", "rotate", "--alg", "ES256"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = list_json(dir.path());
    assert_eq!(listed.len(), 4);
    let es: Vec<_> = listed
        .iter()
        .filter(|k| k["alg"] == json!("ES256"))
        .collect();
    assert_eq!(es.len(), 2);
    let retired = es.iter().find(|k| k["active"] == json!(false)).unwrap();
    let at = |v: &Value| {
        OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(
        at(&retired["public_until"]) - at(&retired["retired_at"]),
        OVERLAP
    );
    for key in &listed {
        let mut members: Vec<_> = key.as_object().unwrap().keys().cloned().collect();
        members.sort();
        assert_eq!(
            members,
            [
                "active",
                "alg",
                "created_at",
                "kid",
                "public_until",
                "retired_at"
            ]
        );
    }

    let out = akaid(dir.path(), &["keys", "list"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4);
    assert_eq!(text.matches("\tactive\t").count(), 3, "{text}");
    assert!(!text.contains("PRIVATE"));

    let out = akaid(dir.path(), &["keys", "rotate", "--alg", "HS256"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HS256"), "{}", stderr(&out));
    assert_eq!(
        list_json(dir.path()).len(),
        4,
        "a refused rotation changes nothing"
    );
}
