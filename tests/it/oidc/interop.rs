//! Independent OpenID Connect relying parties against the real server: Python authlib
//! (`tests/interop/python/oidc_rp.py`) and npm openid-client (`tests/interop/node/oidc_rp.js`),
//! each verifying the ID token itself against the JWKS, with the software handset as the
//! browser. And the OpenID 2.0 → OpenID Connect migration checked against python-openid: the
//! `openid2_id` claim is the identifier python-openid received for the same realm.

use akaid::oidc::client::{ClientRandom, Registration, register};
use akaid::oidc::jose::SigningAlg;
use akaid::ue::browser::{Browser, Decision};
use akaid::ue::ub::Handset;
use serde_json::Value;

use crate::support::{OpServer, RpProcess, op_server_with, subscriber};

const IMPI: &str = "interop@ims.example.net";
const MSISDN: &str = "+447700900456";

async fn provisioned() -> OpServer {
    // Relying-party discovery may reach the python-openid relying party on this machine.
    let server = op_server_with(None, |c| {
        c.openid2_rp_discovery_allow = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let mut sub = subscriber(IMPI);
    sub.msisdn = Some(MSISDN.parse().unwrap());
    server.ctx.hss.add(&sub).await.unwrap();
    server
}

fn browser(server: &OpServer) -> Browser {
    let sub = subscriber(IMPI);
    Browser::new(
        server.bsf_url.clone(),
        Handset {
            impi: sub.impi,
            keys: sub.keys,
            usim: akaid::aka::UsimState::default(),
        },
    )
    .unwrap()
}

/// Registers a client whose redirect URI is the relying party's `/callback`.
async fn client_for(
    server: &OpServer,
    rp: &RpProcess,
    public: bool,
    alg: Option<SigningAlg>,
) -> (String, Option<String>) {
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let new = register(
        &Registration {
            name: "Interop RP",
            redirect_uris: &[format!("{}callback", rp.url)],
            post_logout_redirect_uris: &[],
            public,
            id_token_alg: alg,
            subject_type: None,
            sector_host: None,
        },
        &ClientRandom::draw(),
        now,
    )
    .unwrap();
    server.ctx.store.clients.add(&new.client).await.unwrap();
    (
        new.client.client_id.as_str().to_owned(),
        new.secret.map(|s| s.expose().to_owned()),
    )
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn login_url(
    rp: &RpProcess,
    server: &OpServer,
    client_id: &str,
    secret: Option<&str>,
    extra: &str,
) -> url::Url {
    let issuer = server.op_url.as_str().trim_end_matches('/');
    let mut url = format!(
        "{}login?issuer={}&client_id={}",
        rp.url,
        encode(issuer),
        encode(client_id)
    );
    if let Some(secret) = secret {
        url.push_str(&format!("&client_secret={}", encode(secret)));
    }
    if !extra.is_empty() {
        url.push('&');
        url.push_str(extra);
    }
    url.parse().unwrap()
}

async fn result(b: &mut Browser, url: &url::Url) -> Value {
    let landing = b.login(url, Decision::Allow).await.unwrap();
    assert_eq!(landing.status, 200, "{}: {}", landing.url, landing.body);
    serde_json::from_str(&landing.body).unwrap_or_else(|e| panic!("{e}: {}", landing.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_code_flow_with_pkce_nonce_userinfo_and_refresh() {
    let Some(rp) = RpProcess::python("oidc_rp.py") else {
        return;
    };
    let server = provisioned().await;
    let mut b = browser(&server);
    for alg in [None, Some(SigningAlg::ES256), Some(SigningAlg::EdDSA)] {
        let (client_id, secret) = client_for(&server, &rp, false, alg).await;
        let url = login_url(
            &rp,
            &server,
            &client_id,
            secret.as_deref(),
            "scope=openid+phone+offline_access&prompt=consent&refresh=1",
        );
        let r = result(&mut b, &url).await;
        assert_eq!(r["status"], "success", "{alg:?}: {r}");
        let want = alg.map_or("RS256", |a| a.as_str());
        assert_eq!(r["id_token_header"]["alg"], want, "{r}");
        assert_eq!(r["claims"]["aud"], client_id.as_str(), "{r}");
        assert_eq!(r["claims"]["amr"], serde_json::json!(["hwk", "sc"]), "{r}");
        assert_eq!(r["at_hash_checked"], true, "{r}");
        assert_eq!(r["userinfo"]["phone_number"], MSISDN, "{r}");
        assert_eq!(r["userinfo"]["sub"], r["claims"]["sub"], "{r}");
        assert_eq!(r["token"]["has_refresh_token"], true, "{r}");
        assert_eq!(r["refresh_ok"], true, "{r}");
    }
    // A public client: PKCE and no secret.
    let (client_id, _) = client_for(&server, &rp, true, None).await;
    let r = result(&mut b, &login_url(&rp, &server, &client_id, None, "")).await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["auth"], "none", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_node_full_login() {
    let Some(rp) = RpProcess::node("oidc_rp.js") else {
        return;
    };
    let server = provisioned().await;
    let mut b = browser(&server);
    let (client_id, secret) = client_for(&server, &rp, false, None).await;
    let url = login_url(&rp, &server, &client_id, secret.as_deref(), "");
    let r = result(&mut b, &url).await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["claims"]["aud"], client_id.as_str(), "{r}");
    assert_eq!(r["userinfo"]["phone_number"], MSISDN, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid2_id_is_the_identifier_python_openid_received_for_the_realm() {
    let (Some(openid2_rp), Some(oidc_rp)) =
        (RpProcess::python("rp.py"), RpProcess::python("oidc_rp.py"))
    else {
        return;
    };
    let server = provisioned().await;
    let mut b = browser(&server);
    // The site's OpenID 2.0 login, with python-openid.
    let r = result(&mut b, &openid2_rp.login_url(&server.op_url, "mode=smart")).await;
    assert_eq!(r["status"], "success", "{r}");
    let openid2_identifier = r["identity_url"].as_str().unwrap().to_owned();
    // The same site moving to OpenID Connect asks for openid2_id at its realm. Its redirect
    // URI must lie inside that realm (Migration 1.0), and here the two relying parties are
    // two ports of one host: the realm names the OIDC one's port, and the identifier is the
    // same because it depends on the realm's host only (DESIGN.md §2.6).
    let (client_id, secret) = client_for(&server, &oidc_rp, false, None).await;
    assert_eq!(
        url::Url::parse(&openid2_rp.url).unwrap().host(),
        url::Url::parse(&oidc_rp.url).unwrap().host()
    );
    let extra = format!(
        "scope=openid+openid2&openid2_realm={}",
        encode(&oidc_rp.url)
    );
    let url = login_url(&oidc_rp, &server, &client_id, secret.as_deref(), &extra);
    let r = result(&mut b, &url).await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(
        r["claims"]["openid2_id"],
        openid2_identifier.as_str(),
        "{r}"
    );
}
