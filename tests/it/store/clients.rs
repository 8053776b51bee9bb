//! The OpenID Connect clients aggregate (migration 0007): add, get, list, remove, on both
//! databases; the database refuses rows the registration rules would never make.

use akaid::ids::ClientId;
use akaid::oidc::client::{ClientRandom, Registration, SubjectType, register};
use akaid::oidc::jose::SigningAlg;
use akaid::secret::Secret;
use akaid::store::{ConsentRow, OidcClient, StoreError};
use time::OffsetDateTime;

use crate::support::TestDb;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

fn client(id_byte: u8, created: i64) -> OidcClient {
    OidcClient {
        client_id: ClientId::from_random(&[id_byte; 16]),
        name: format!("Client {id_byte}"),
        secret_hash: Some(akaid::oidc::client::secret_hash("s3cret")),
        redirect_uris: vec![
            "https://rp.example/cb".into(),
            "https://rp.example/cb?next=%2Fhome&x=é".into(),
        ],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        id_token_alg: SigningAlg::ES256,
        subject_type: SubjectType::Pairwise,
        sector_host: Some("rp.example".into()),
        created_at: at(created),
    }
}

async fn clients_add_get_list_remove(db: TestDb) {
    let clients = &db.store.clients;
    assert!(clients.list().await.unwrap().is_empty());
    let a = client(1, 20);
    let b = OidcClient {
        secret_hash: None,
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: SigningAlg::EdDSA,
        subject_type: SubjectType::Public,
        sector_host: None,
        ..client(2, 10)
    };
    clients.add(&a).await.unwrap();
    clients.add(&b).await.unwrap();
    assert_eq!(clients.get(&a.client_id).await.unwrap(), Some(a.clone()));
    assert_eq!(clients.get(&b.client_id).await.unwrap(), Some(b.clone()));
    let unknown = ClientId::from_random(&[3; 16]);
    assert_eq!(clients.get(&unknown).await.unwrap(), None);
    assert_eq!(
        clients.list().await.unwrap(),
        vec![b.clone(), a.clone()],
        "oldest first"
    );
    assert!(
        clients
            .get(&a.client_id)
            .await
            .unwrap()
            .unwrap()
            .verify_secret("s3cret")
    );

    // A client_id is registered once; the first registration stays as it was.
    let again = OidcClient {
        name: "Impostor".into(),
        ..a.clone()
    };
    match clients.add(&again).await {
        Err(StoreError::Duplicate { what, key }) => {
            assert_eq!(what, "client_id");
            assert_eq!(key, a.client_id.to_string());
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(clients.get(&a.client_id).await.unwrap(), Some(a.clone()));

    // Removing a client removes the consents given to it, and only those.
    let impi: akaid::ids::Impi = "alice@x".parse().unwrap();
    for rp in [
        format!("oidc:{}", a.client_id),
        "openid2:https://rp.example/".into(),
    ] {
        db.store
            .consents
            .put(&ConsentRow {
                impi: impi.clone(),
                relying_party: rp,
                shared: "identifier".into(),
                created_at: at(30),
            })
            .await
            .unwrap();
    }
    assert!(clients.remove(&a.client_id).await.unwrap());
    assert!(!clients.remove(&a.client_id).await.unwrap());
    assert_eq!(clients.get(&a.client_id).await.unwrap(), None);
    assert_eq!(clients.list().await.unwrap(), vec![b]);
    let left: Vec<_> = db
        .store
        .consents
        .list(&impi)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.relying_party)
        .collect();
    assert_eq!(left, ["openid2:https://rp.example/"]);
}

async fn registered_clients_round_trip(db: TestDb) {
    let redirects = vec![
        "https://a.example/cb".to_owned(),
        "https://b.example/cb".to_owned(),
    ];
    let new = register(
        &Registration {
            name: "Two hosts",
            redirect_uris: &redirects,
            sector_host: Some("example.com"),
            id_token_alg: Some(SigningAlg::RS256),
            ..Registration::default()
        },
        &ClientRandom {
            client_id: [4; 16],
            secret: Secret::new([5; 32]),
        },
        at(0),
    )
    .unwrap();
    db.store.clients.add(&new.client).await.unwrap();
    let stored = db
        .store
        .clients
        .get(&new.client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, new.client);
    assert!(stored.verify_secret(new.secret.unwrap().expose()));
    assert!(!stored.verify_secret("guess"));
}

/// Rows the registration rules never make are refused by the database too, and leave
/// nothing behind.
async fn the_schema_refuses_inconsistent_clients(db: TestDb) {
    let clients = &db.store.clients;
    let bad = [
        OidcClient {
            redirect_uris: Vec::new(),
            ..client(1, 0)
        },
        OidcClient {
            sector_host: None,
            ..client(2, 0)
        },
        OidcClient {
            subject_type: SubjectType::Public,
            ..client(3, 0)
        },
        OidcClient {
            secret_hash: Some(vec![0; 16]),
            ..client(4, 0)
        },
    ];
    for row in &bad {
        assert!(
            matches!(clients.add(row).await, Err(StoreError::Database(_))),
            "{row:?}"
        );
    }
    assert!(clients.list().await.unwrap().is_empty());
}

crate::on_both_databases!(
    clients_add_get_list_remove,
    registered_clients_round_trip,
    the_schema_refuses_inconsistent_clients,
);
