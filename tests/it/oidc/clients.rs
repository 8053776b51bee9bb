//! `akaid client add|list|show|remove` through the real binary (DESIGN.md §4): the secret
//! shown once and stored hashed, exact redirect URIs, and bad input refused with a clear
//! message and nothing stored.

use std::path::Path;

use akaid::ids::ClientId;
use akaid::store::Store;
use serde_json::{Value, json};

use crate::support::{akaid, stderr, stdout};

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = akaid(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The refusal's message; the command must fail with exit status 1 (2 for clap's usage
/// errors).
fn run_err(dir: &Path, args: &[&str], status: i32) -> String {
    let out = akaid(dir, args);
    assert_eq!(
        out.status.code(),
        Some(status),
        "{args:?}: {}",
        stdout(&out)
    );
    stderr(&out)
}

async fn store(dir: &Path) -> Store {
    Store::open(&format!(
        "sqlite://{}",
        dir.join("data").join("akaid.db").display()
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_confidential_client_gets_its_secret_once_and_only_the_hash_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let added: Value = serde_json::from_str(&run_ok(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Example Shop",
            "--redirect-uri",
            "https://shop.example/callback",
            "--redirect-uri",
            "https://shop.example:8443/cb?x=1",
            "--post-logout-redirect-uri",
            "https://shop.example/bye",
            "--id-token-alg",
            "ES256",
            "--json",
        ],
    ))
    .unwrap();
    let id = added["client_id"].as_str().unwrap().to_owned();
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 22, "128 bits, base64url");
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert!(id.parse::<ClientId>().is_ok());

    let shown: Value =
        serde_json::from_str(&run_ok(dir.path(), &["client", "show", &id, "--json"])).unwrap();
    assert_eq!(
        shown,
        json!({
            "client_id": id,
            "client_name": "Example Shop",
            "client_type": "confidential",
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": ["https://shop.example/callback", "https://shop.example:8443/cb?x=1"],
            "post_logout_redirect_uris": ["https://shop.example/bye"],
            "id_token_signed_response_alg": "ES256",
            "subject_type": "pairwise",
            "sector_host": "shop.example",
            "created_at": shown["created_at"],
        })
    );
    let text = run_ok(dir.path(), &["client", "show", &id]);
    assert!(text.contains("Example Shop") && text.contains("pairwise (sector shop.example)"));
    assert!(!text.contains(&secret));
    let list = run_ok(dir.path(), &["client", "list"]);
    assert_eq!(
        list,
        format!("{id}\tconfidential\tES256\tpairwise\tExample Shop\n")
    );

    let stored = store(dir.path())
        .await
        .clients
        .get(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.verify_secret(&secret));
    assert!(!stored.verify_secret(&secret[1..]));
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(akaid::oidc::client::secret_hash(&secret).as_slice())
    );
}

#[test]
fn a_public_client_has_no_secret_and_the_defaults_are_rs256_pairwise() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Phone app",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--public",
        ],
    );
    assert!(out.contains("client_id:") && out.contains("PKCE"), "{out}");
    assert!(!out.contains("client_secret"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id:"))
        .unwrap()
        .trim()
        .to_owned();
    let shown: Value =
        serde_json::from_str(&run_ok(dir.path(), &["client", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["client_type"], "public");
    assert_eq!(shown["token_endpoint_auth_method"], "none");
    assert_eq!(shown["id_token_signed_response_alg"], "RS256");
    assert_eq!(shown["subject_type"], "pairwise");
    assert_eq!(shown["sector_host"], "127.0.0.1");

    let out = run_ok(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Everywhere",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "https://b.example/cb",
            "--subject",
            "public",
            "--id-token-alg",
            "EdDSA",
            "--json",
        ],
    );
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["subject_type"], "public");
    assert_eq!(added["sector_host"], Value::Null);
    assert_eq!(added["id_token_signed_response_alg"], "EdDSA");
    assert_eq!(run_ok(dir.path(), &["client", "list"]).lines().count(), 2);
}

#[test]
fn bad_registrations_are_refused_clearly_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let add = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["client", "add", "--name", "Shop"];
        args.extend_from_slice(extra);
        args
    };
    for (args, status, want) in [
        (
            add(&["--redirect-uri", "http://shop.example/cb"]),
            1,
            "allowed only on loopback hosts",
        ),
        (
            add(&["--redirect-uri", "https://shop.example/cb#top"]),
            1,
            "fragment",
        ),
        (add(&["--redirect-uri", "/cb"]), 1, "not an absolute URL"),
        (
            add(&[
                "--redirect-uri",
                "https://a.example/cb",
                "--redirect-uri",
                "https://b.example/cb",
            ]),
            1,
            "--sector-host",
        ),
        (
            add(&[
                "--redirect-uri",
                "https://shop.example/cb",
                "--post-logout-redirect-uri",
                "http://shop.example/bye",
            ]),
            1,
            "--post-logout-redirect-uri",
        ),
        (
            add(&[
                "--redirect-uri",
                "https://shop.example/cb",
                "--subject",
                "public",
                "--sector-host",
                "shop.example",
            ]),
            1,
            "only a pairwise client",
        ),
        (add(&[]), 2, "--redirect-uri"),
        (
            add(&[
                "--redirect-uri",
                "https://shop.example/cb",
                "--id-token-alg",
                "HS256",
            ]),
            2,
            "HS256",
        ),
        (
            add(&[
                "--redirect-uri",
                "https://shop.example/cb",
                "--subject",
                "secret",
            ]),
            2,
            "pairwise, public",
        ),
        (
            vec![
                "client",
                "add",
                "--name",
                " ",
                "--redirect-uri",
                "https://shop.example/cb",
            ],
            1,
            "--name",
        ),
    ] {
        let err = run_err(dir.path(), &args, status);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(run_ok(dir.path(), &["client", "list"]), "");
}

#[test]
fn remove_deletes_once_and_unknown_clients_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let added: Value = serde_json::from_str(&run_ok(
        dir.path(),
        &[
            "client",
            "add",
            "--name",
            "Shop",
            "--redirect-uri",
            "https://shop.example/cb",
            "--json",
        ],
    ))
    .unwrap();
    let id = added["client_id"].as_str().unwrap();
    assert_eq!(
        run_ok(dir.path(), &["client", "remove", id]),
        format!("removed client {id}\n")
    );
    let err = run_err(dir.path(), &["client", "remove", id], 1);
    assert!(
        err.contains(&format!("no client with client_id {id}")),
        "{err}"
    );
    let err = run_err(dir.path(), &["client", "show", id], 1);
    assert!(err.contains("no client"), "{err}");
    let err = run_err(dir.path(), &["client", "show", "not/an id"], 1);
    assert!(err.contains("no client"), "{err}");
    assert_eq!(run_ok(dir.path(), &["client", "list"]), "");
}
