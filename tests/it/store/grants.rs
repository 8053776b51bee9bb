//! The OpenID Connect grants aggregate (migration 0008): codes taken once however many
//! requests race, refresh tokens rotated with reuse detection and a grace window, revocation
//! of everything a grant issued, and the sweep.

use akaid::ids::ClientId;
use akaid::oidc::grant::{CodeChallenge, GrantId, Scopes, TokenHash};
use akaid::store::{CodeRow, CodeTake, Grant, NewRefreshToken, RefreshTokenRow, Rotation};
use time::{Duration, OffsetDateTime};

use crate::support::{TestDb, hss, subscriber};

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

fn client(id: &str) -> ClientId {
    id.parse().unwrap()
}

/// A grant id from a tag, 22 base64url characters like a generated one.
fn grant_id(tag: u8) -> GrantId {
    format!("grant{tag:0>17}").parse().unwrap()
}

fn hash(name: &str) -> TokenHash {
    TokenHash::of(name)
}

const GRACE: Duration = Duration::seconds(10);

/// Adds the subscriber (grants reference it) and returns a grant of `client_id` for it.
async fn grant(db: &TestDb, tag: u8, impi: &str, client_id: &str) -> Grant {
    if db
        .store
        .subscribers
        .info(&impi.parse().unwrap())
        .await
        .unwrap()
        .is_none()
    {
        hss(db).add(&subscriber(impi)).await.unwrap();
    }
    Grant {
        id: grant_id(tag),
        client_id: client(client_id),
        impi: impi.parse().unwrap(),
        scope: Scopes::from_request("openid phone offline_access").unwrap(),
        shared: "identifier phone".into(),
        auth_time: at(-30),
        acr: Some("urn:akaid:gba".into()),
        openid2_id: Some("https://op.example/id/abc".into()),
    }
}

fn code(name: &str, expires: i64) -> CodeRow {
    CodeRow {
        hash: hash(name),
        redirect_uri: "https://rp.example.com/cb".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some(CodeChallenge::s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )),
        expires_at: at(expires),
    }
}

fn refresh(name: &str, grant: &Grant, expires: i64) -> RefreshTokenRow {
    RefreshTokenRow {
        hash: hash(name),
        grant_id: grant.id.clone(),
        parent: None,
        issued_at: at(0),
        expires_at: at(expires),
    }
}

fn successor(name: &str, issued: i64) -> NewRefreshToken {
    NewRefreshToken {
        hash: hash(name),
        issued_at: at(issued),
        expires_at: at(issued + 86_400),
    }
}

async fn a_code_is_taken_once_and_a_second_use_names_the_grant(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    let code = code("code-1", 60);
    g.insert_grant(&grant, &code, at(0), at(660)).await.unwrap();
    assert!(g.is_grant_live(&grant.id).await.unwrap());
    assert_eq!(g.grant(&grant.id).await.unwrap(), Some(grant.clone()));

    assert_eq!(
        g.take_code(&code.hash, at(5)).await.unwrap(),
        CodeTake::Taken {
            grant: grant.clone(),
            code: code.clone()
        }
    );
    assert_eq!(
        g.take_code(&code.hash, at(6)).await.unwrap(),
        CodeTake::AlreadyUsed {
            grant_id: grant.id.clone()
        }
    );
    // After its expiry a used code is still recognised as used.
    assert_eq!(
        g.take_code(&code.hash, at(600)).await.unwrap(),
        CodeTake::AlreadyUsed {
            grant_id: grant.id.clone()
        }
    );
    // The caller revokes the grant; the first redemption's refresh token is refused then.
    assert!(g.revoke_grant(&grant.id, at(7)).await.unwrap());
    assert!(!g.revoke_grant(&grant.id, at(8)).await.unwrap(), "once");
    assert!(!g.is_grant_live(&grant.id).await.unwrap());
    assert_eq!(g.grant(&grant.id).await.unwrap(), None);
    assert!(
        !g.insert_refresh(&refresh("rt-1", &grant, 1000))
            .await
            .unwrap()
    );
    assert!(!g.is_grant_live(&grant_id(99)).await.unwrap());
}

async fn expired_revoked_or_unknown_codes_are_refused_and_change_nothing(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    let code = code("code-1", 60);
    g.insert_grant(&grant, &code, at(0), at(660)).await.unwrap();
    assert_eq!(
        g.take_code(&code.hash, at(60)).await.unwrap(),
        CodeTake::Expired
    );
    assert_eq!(
        g.take_code(&hash("no such code"), at(1)).await.unwrap(),
        CodeTake::Unknown
    );
    // The refusal left the code unused (a clock at 59 s still redeems it).
    assert!(matches!(
        g.take_code(&code.hash, at(59)).await.unwrap(),
        CodeTake::Taken { .. }
    ));

    let other = self::grant(&db, 2, "alice@x", "client-1").await;
    let other_code = self::code("code-2", 60);
    g.insert_grant(&other, &other_code, at(0), at(660))
        .await
        .unwrap();
    assert!(g.revoke_grant(&other.id, at(1)).await.unwrap());
    assert_eq!(
        g.take_code(&other_code.hash, at(2)).await.unwrap(),
        CodeTake::GrantRevoked {
            grant_id: other.id.clone()
        }
    );
}

async fn concurrent_takes_of_one_code_have_one_winner(db: TestDb) {
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    let code = code("contested", 60);
    db.store
        .grants
        .insert_grant(&grant, &code, at(0), at(660))
        .await
        .unwrap();
    let takers: Vec<_> = (0..32)
        .map(|_| {
            let g = db.store.grants.clone();
            let h = code.hash;
            tokio::spawn(async move { g.take_code(&h, at(1)).await.unwrap() })
        })
        .collect();
    let (mut winners, mut used) = (0, 0);
    for t in takers {
        match t.await.unwrap() {
            CodeTake::Taken { grant: g, code: c } => {
                assert_eq!((g, c), (grant.clone(), code.clone()));
                winners += 1;
            }
            CodeTake::AlreadyUsed { grant_id } => {
                assert_eq!(grant_id, grant.id);
                used += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((winners, used), (1, 31));
}

async fn refresh_rotation_then_reuse_after_grace_revokes_the_grant(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &grant, 86_400))
            .await
            .unwrap()
    );
    let c = client("client-1");

    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-1", 100), at(100), GRACE)
            .await
            .unwrap(),
        Rotation::Rotated(grant.clone())
    );
    assert_eq!(
        g.rotate_refresh(&hash("rt-1"), &c, &successor("rt-2", 200), at(200), GRACE)
            .await
            .unwrap(),
        Rotation::Rotated(grant.clone())
    );
    // rt-0 again, long after it was rotated: a replay. The grant goes, in the same step.
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-x", 300), at(300), GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: grant.id.clone()
        }
    );
    assert!(!g.is_grant_live(&grant.id).await.unwrap());
    // The newest token, never misused, dies with the grant; the replay stored nothing.
    assert_eq!(
        g.rotate_refresh(&hash("rt-2"), &c, &successor("rt-3", 301), at(301), GRACE)
            .await
            .unwrap(),
        Rotation::GrantRevoked {
            grant_id: grant.id.clone()
        }
    );
    assert_eq!(
        g.rotate_refresh(&hash("rt-x"), &c, &successor("rt-y", 302), at(302), GRACE)
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

async fn a_refresh_within_the_grace_window_gets_a_second_successor(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &grant, 86_400))
            .await
            .unwrap()
    );
    let c = client("client-1");
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-a", 100), at(100), GRACE)
            .await
            .unwrap(),
        Rotation::Rotated(grant.clone())
    );
    // The same token again 10 s later (the window's edge): a concurrent refresh.
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-b", 110), at(110), GRACE)
            .await
            .unwrap(),
        Rotation::ReusedWithinGrace(grant.clone())
    );
    // Both successors work.
    for (old, new) in [("rt-a", "rt-a2"), ("rt-b", "rt-b2")] {
        assert_eq!(
            g.rotate_refresh(&hash(old), &c, &successor(new, 120), at(120), GRACE)
                .await
                .unwrap(),
            Rotation::Rotated(grant.clone()),
            "{old}"
        );
    }
    // After the window the old token is a replay, and both branches die.
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-c", 121), at(121), GRACE)
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: grant.id.clone()
        }
    );
    for old in ["rt-a2", "rt-b2"] {
        assert_eq!(
            g.rotate_refresh(&hash(old), &c, &successor("rt-z", 130), at(130), GRACE)
                .await
                .unwrap(),
            Rotation::GrantRevoked {
                grant_id: grant.id.clone()
            }
        );
    }
}

async fn concurrent_rotations_of_one_refresh_token_have_one_winner(db: TestDb) {
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    db.store
        .grants
        .insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        db.store
            .grants
            .insert_refresh(&refresh("rt-0", &grant, 86_400))
            .await
            .unwrap()
    );
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let g = db.store.grants.clone();
            tokio::spawn(async move {
                g.rotate_refresh(
                    &hash("rt-0"),
                    &client("client-1"),
                    &successor(&format!("rt-{i}-new"), 100),
                    at(100),
                    GRACE,
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let (mut rotated, mut within_grace) = (0, 0);
    for r in racers {
        match r.await.unwrap() {
            Rotation::Rotated(g) => {
                assert_eq!(g, grant);
                rotated += 1;
            }
            Rotation::ReusedWithinGrace(g) => {
                assert_eq!(g, grant);
                within_grace += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, within_grace), (1, 15));
    assert!(db.store.grants.is_grant_live(&grant.id).await.unwrap());
}

async fn expired_unknown_or_other_clients_refresh_tokens_change_nothing(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &grant, 1000))
            .await
            .unwrap()
    );
    let c = client("client-1");
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-1", 1000), at(1000), GRACE)
            .await
            .unwrap(),
        Rotation::Expired
    );
    assert_eq!(
        g.rotate_refresh(&hash("nope"), &c, &successor("rt-1", 10), at(10), GRACE)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    // Another client presenting it (RFC 6749 §6) learns nothing and changes nothing.
    assert_eq!(
        g.rotate_refresh(
            &hash("rt-0"),
            &client("client-2"),
            &successor("rt-1", 10),
            at(10),
            GRACE
        )
        .await
        .unwrap(),
        Rotation::Unknown
    );
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-1", 20), at(20), GRACE)
            .await
            .unwrap(),
        Rotation::Rotated(grant.clone())
    );
    assert!(g.is_grant_live(&grant.id).await.unwrap());
}

async fn grants_of_a_subscriber_and_client_are_revoked_together(db: TestDb) {
    let g = &db.store.grants;
    let a1 = grant(&db, 1, "alice@x", "client-1").await;
    let a2 = grant(&db, 2, "alice@x", "client-1").await;
    let other_client = grant(&db, 3, "alice@x", "client-2").await;
    let other_subscriber = grant(&db, 4, "bob@x", "client-1").await;
    for (i, gr) in [&a1, &a2, &other_client, &other_subscriber]
        .into_iter()
        .enumerate()
    {
        g.insert_grant(gr, &code(&format!("code-{i}"), 60), at(0), at(660))
            .await
            .unwrap();
    }
    assert_eq!(
        g.revoke_grants_of(&a1.impi, &a1.client_id, at(1))
            .await
            .unwrap(),
        2
    );
    for (gr, live) in [
        (&a1, false),
        (&a2, false),
        (&other_client, true),
        (&other_subscriber, true),
    ] {
        assert_eq!(g.is_grant_live(&gr.id).await.unwrap(), live, "{:?}", gr.id);
    }
}

async fn grants_go_with_the_subscriber(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &grant, 1000))
            .await
            .unwrap()
    );
    assert!(db.store.subscribers.remove(&grant.impi).await.unwrap());
    assert!(!g.is_grant_live(&grant.id).await.unwrap());
    assert_eq!(
        g.take_code(&hash("code-1"), at(1)).await.unwrap(),
        CodeTake::Unknown
    );
    assert_eq!(
        g.rotate_refresh(
            &hash("rt-0"),
            &grant.client_id,
            &successor("rt-1", 1),
            at(1),
            GRACE
        )
        .await
        .unwrap(),
        Rotation::Unknown
    );
}

async fn grant_sweep_keeps_what_may_still_be_used(db: TestDb) {
    let g = &db.store.grants;
    // Without a refresh token: kept until keep_until (660), its used code with it.
    let short = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&short, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(matches!(
        g.take_code(&hash("code-1"), at(1)).await.unwrap(),
        CodeTake::Taken { .. }
    ));
    // With a refresh token living to 5000: kept while it lives.
    let long = grant(&db, 2, "alice@x", "client-1").await;
    g.insert_grant(&long, &code("code-2", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &long, 5000))
            .await
            .unwrap()
    );

    assert_eq!(
        g.sweep(at(660)).await.unwrap(),
        0,
        "nothing before its time"
    );
    assert_eq!(
        g.take_code(&hash("code-1"), at(600)).await.unwrap(),
        CodeTake::AlreadyUsed {
            grant_id: short.id.clone()
        },
        "a used code is remembered as long as what it issued may be in use"
    );
    assert_eq!(
        g.sweep(at(661)).await.unwrap(),
        2,
        "the short grant and its code"
    );
    assert!(!g.is_grant_live(&short.id).await.unwrap());
    assert_eq!(
        g.take_code(&hash("code-1"), at(700)).await.unwrap(),
        CodeTake::Unknown
    );
    assert!(g.is_grant_live(&long.id).await.unwrap());
    assert_eq!(
        g.take_code(&hash("code-2"), at(700)).await.unwrap(),
        CodeTake::Expired,
        "the long grant's unused code is still there"
    );
    assert_eq!(
        g.sweep(at(5001)).await.unwrap(),
        3,
        "token, then grant and code"
    );
    assert!(!g.is_grant_live(&long.id).await.unwrap());
}

async fn the_grant_of_a_refresh_token_is_read_without_using_it_up(db: TestDb) {
    let g = &db.store.grants;
    let grant = grant(&db, 1, "alice@x", "client-1").await;
    g.insert_grant(&grant, &code("code-1", 60), at(0), at(660))
        .await
        .unwrap();
    assert!(
        g.insert_refresh(&refresh("rt-0", &grant, 86_400))
            .await
            .unwrap()
    );
    assert_eq!(
        g.grant_of_refresh(&hash("rt-0")).await.unwrap(),
        Some(grant.clone())
    );
    assert_eq!(g.grant_of_refresh(&hash("rt-unknown")).await.unwrap(), None);
    // The read used nothing up: the token still rotates, and the rotated one still names
    // its grant (the rotation, not this read, decides about reuse).
    let c = client("client-1");
    assert_eq!(
        g.rotate_refresh(&hash("rt-0"), &c, &successor("rt-1", 100), at(100), GRACE)
            .await
            .unwrap(),
        Rotation::Rotated(grant.clone())
    );
    assert_eq!(
        g.grant_of_refresh(&hash("rt-0")).await.unwrap(),
        Some(grant.clone())
    );
    g.revoke_grant(&grant.id, at(200)).await.unwrap();
    assert_eq!(g.grant_of_refresh(&hash("rt-1")).await.unwrap(), None);
}

crate::on_both_databases!(
    the_grant_of_a_refresh_token_is_read_without_using_it_up,
    a_code_is_taken_once_and_a_second_use_names_the_grant,
    expired_revoked_or_unknown_codes_are_refused_and_change_nothing,
    concurrent_takes_of_one_code_have_one_winner,
    refresh_rotation_then_reuse_after_grace_revokes_the_grant,
    a_refresh_within_the_grace_window_gets_a_second_successor,
    concurrent_rotations_of_one_refresh_token_have_one_winner,
    expired_unknown_or_other_clients_refresh_tokens_change_nothing,
    grants_of_a_subscriber_and_client_are_revoked_together,
    grants_go_with_the_subscriber,
    grant_sweep_keeps_what_may_still_be_used,
);
