//! OpenID Connect provider (DESIGN.md §2.7): discovery and JWKS over HTTP, checked by hand and
//! by the `openidconnect` crate as a relying party; `serve`'s refusal of a plain-http issuer;
//! `akaid client` through the real binary (in `oidc/clients.rs`).

use akaid::oidc::jose::{self, SigningAlg};
use serde_json::{Value, json};

use crate::support::{OpServer, akaid, free_port, op_server_with, stderr};

mod clients;
pub(crate) mod flow;
mod interop;

fn issuer(server: &OpServer) -> String {
    server.op_url.as_str().trim_end_matches('/').to_owned()
}

async fn get_json(url: &str) -> (reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

#[tokio::test]
async fn discovery_names_the_issuer_and_what_the_op_supports() {
    let server = op_server_with(None, |_| {}).await;
    let iss = issuer(&server);
    assert!(!iss.ends_with('/'));
    let (headers, doc) = get_json(&format!("{iss}/.well-known/openid-configuration")).await;
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age="),
        "{headers:?}"
    );
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(doc["issuer"], json!(iss));
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/logout"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[field], json!(format!("{iss}{path}")), "{field}");
    }
    for (field, want) in [
        ("response_types_supported", json!(["code"])),
        (
            "grant_types_supported",
            json!(["authorization_code", "refresh_token"]),
        ),
        ("subject_types_supported", json!(["pairwise", "public"])),
        (
            "id_token_signing_alg_values_supported",
            json!(["RS256", "ES256", "EdDSA"]),
        ),
        (
            "token_endpoint_auth_methods_supported",
            json!(["client_secret_basic", "client_secret_post", "none"]),
        ),
        ("code_challenge_methods_supported", json!(["S256"])),
        (
            "scopes_supported",
            json!(["openid", "phone", "profile", "offline_access", "openid2"]),
        ),
        (
            "prompt_values_supported",
            json!(["none", "login", "consent"]),
        ),
        ("request_parameter_supported", json!(false)),
        ("request_uri_parameter_supported", json!(false)),
        ("claims_parameter_supported", json!(false)),
        (
            "authorization_response_iss_parameter_supported",
            json!(true),
        ),
    ] {
        assert_eq!(doc[field], want, "{field}");
    }
    let claims = doc["claims_supported"].as_array().unwrap();
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "at_hash",
        "phone_number",
        "phone_number_verified",
        "name",
        "nickname",
        "openid2_id",
    ] {
        assert!(claims.contains(&json!(claim)), "{claim} missing");
    }
    assert_eq!(
        doc["acr_values_supported"],
        json!([akaid::oidc::discovery::ACR_PHISHING_RESISTANT])
    );
}

fn jwks_kids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn jwks_publishes_the_active_keys_and_keeps_rotated_ones() {
    let server = op_server_with(None, |_| {}).await;
    let ring = &server.state.key_ring;
    let url = format!("{}/jwks", issuer(&server));
    let (headers, doc) = get_json(&url).await;
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age="),
        "{headers:?}"
    );
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let algs: Vec<_> = keys.iter().map(|k| k["alg"].clone()).collect();
    assert_eq!(algs, [json!("RS256"), json!("ES256"), json!("EdDSA")]);
    let old: Vec<String> = SigningAlg::ALL
        .iter()
        .map(|&alg| ring.active(alg).unwrap().kid().to_owned())
        .collect();
    assert_eq!(jwks_kids(&doc), old);
    for key in keys {
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} published: {key}");
        }
    }

    ring.rotate(&SigningAlg::ALL).await.unwrap();
    let (_, doc) = get_json(&url).await;
    let kids = jwks_kids(&doc);
    assert_eq!(kids.len(), 6);
    for alg in SigningAlg::ALL {
        let new = ring.active(alg).unwrap();
        assert!(!old.contains(&new.kid().to_owned()));
        assert!(
            kids.contains(&new.kid().to_owned()),
            "new {alg} key missing"
        );
    }
    for kid in &old {
        assert!(
            kids.contains(kid),
            "rotated-out key {kid} dropped too early"
        );
    }
}

#[tokio::test]
async fn a_state_without_loaded_keys_answers_jwks_with_503() {
    let server = op_server_with(None, |_| {}).await;
    let state = akaid::AppState::new(server.ctx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(
            listener,
            akaid::op_router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let response = reqwest::get(format!("http://127.0.0.1:{port}/jwks"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

/// The `openidconnect` crate, as a relying party would use it: discovery (which checks the
/// issuer against the URL it fetched) and the JWKS it names; then ID tokens signed with each
/// active key verify against that JWKS.
#[tokio::test]
async fn the_openidconnect_crate_reads_discovery_and_verifies_against_the_jwks() {
    use openidconnect::core::{
        CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm, CoreProviderMetadata,
        CoreSubjectIdentifierType,
    };
    use openidconnect::{ClientId, IssuerUrl, Nonce};

    let server = op_server_with(None, |_| {}).await;
    let iss = issuer(&server);
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(iss.clone()).unwrap(), &http)
            .await
            .unwrap();
    assert_eq!(metadata.issuer().as_str(), iss);
    assert_eq!(
        metadata.id_token_signing_alg_values_supported(),
        &vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ]
    );
    assert_eq!(
        metadata.subject_types_supported(),
        &vec![
            CoreSubjectIdentifierType::Pairwise,
            CoreSubjectIdentifierType::Public
        ]
    );
    assert_eq!(
        metadata.token_endpoint().unwrap().as_str(),
        format!("{iss}/token")
    );
    assert_eq!(metadata.jwks().keys().len(), 3);

    for alg in SigningAlg::ALL {
        let key = server.state.key_ring.active(alg).unwrap();
        let now = akaid::clock::Clock::now(&akaid::clock::SystemClock).unix_timestamp();
        let claims = json!({
            "iss": iss, "sub": "s", "aud": "rp", "iat": now, "exp": now + 300, "nonce": "n-1",
        });
        let token = jose::sign_jwt(&key, Some("JWT"), &claims).unwrap();
        let token: CoreIdToken = token.parse().unwrap();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new("rp".into()),
            IssuerUrl::new(iss.clone()).unwrap(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ]);
        let verified = token
            .claims(&verifier, &Nonce::new("n-1".into()))
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.subject().as_str(), "s");
    }
}

#[test]
fn serve_refuses_a_plain_http_issuer_outside_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = akaid(
        dir.path(),
        &["serve", "--public-url", "http://op.example:8080/"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("http://op.example:8080/")
            && err.contains("https://")
            && err.contains("--insecure-http"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a refused start must not create the data directory"
    );
}

#[tokio::test]
async fn serve_runs_a_plain_http_issuer_with_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let (op, bsf) = (free_port(), free_port());
    // 0.0.0.0 is not loopback, yet reachable here as 127.0.0.1.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_akaid"))
        .current_dir(dir.path())
        .args(["--data-dir", "data", "serve", "--insecure-http"])
        .args(["--public-url", &format!("http://0.0.0.0:{op}/")])
        .args(["--bsf-url", &format!("http://127.0.0.1:{bsf}/")])
        .env_remove("AKAID_MASTER_KEY")
        .env_remove("AKAID_DATABASE_URL")
        .env("AKAID_LOG", "warn")
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let _child = crate::gba::KillOnDrop(child);
    let local = url::Url::parse(&format!("http://127.0.0.1:{op}/")).unwrap();
    crate::gba::wait_healthy(&local).await;
    let (_, doc) = get_json(&format!("{local}.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], json!(format!("http://0.0.0.0:{op}")));
    let (_, jwks) = get_json(&format!("{local}jwks")).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
}
