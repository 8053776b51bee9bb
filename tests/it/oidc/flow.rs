//! The OpenID Connect code flow end to end (DESIGN.md §2.7): the real server in process, the
//! software handset as the browser (Ua login with the SIM, Allow on the consent page), and
//! the `openidconnect` crate as the relying party verifying ID tokens itself. Then one test
//! per refusal the issue lists.

use std::sync::Arc;

use akaid::clock::FixedClock;
use akaid::oidc::client::{ClientRandom, Registration, register};
use akaid::oidc::jose::{self, SigningAlg};
use akaid::store::OidcClient;
use akaid::ue::browser::{Browser, Decision};
use akaid::ue::ub::Handset;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::support::{OpServer, op_server_with, subscriber};

pub(crate) const IMPI: &str = "oidc-user@ims.example.net";
const MSISDN: &str = "+447700900123";
pub(crate) const REDIRECT: &str = "http://localhost:9/cb";
const POST_LOGOUT: &str = "http://localhost:9/bye";

fn issuer(server: &OpServer) -> String {
    server.op_url.as_str().trim_end_matches('/').to_owned()
}

pub(crate) async fn provisioned(clock: Option<Arc<dyn akaid::clock::Clock>>) -> OpServer {
    provisioned_with(clock, |_| {}).await
}

async fn provisioned_with(
    clock: Option<Arc<dyn akaid::clock::Clock>>,
    configure: impl FnOnce(&mut akaid::config::Config),
) -> OpServer {
    let server = op_server_with(clock, configure).await;
    let mut sub = subscriber(IMPI);
    sub.msisdn = Some(MSISDN.parse().unwrap());
    server.ctx.hss.add(&sub).await.unwrap();
    let impi = IMPI.parse().unwrap();
    let profiles = &server.ctx.store.profiles;
    for (field, value) in [
        (akaid::profile::ProfileField::Nickname, "ada"),
        (akaid::profile::ProfileField::Email, "ada@example.net"),
    ] {
        assert!(
            profiles
                .set_profile_field(&impi, field, Some(value))
                .await
                .unwrap()
        );
    }
    server
}

fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )))
}

/// Registers a client in process, as `akaid client add` does; returns it and its secret.
pub(crate) async fn client(
    server: &OpServer,
    public: bool,
    alg: Option<SigningAlg>,
) -> (OidcClient, Option<String>) {
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let new = register(
        &Registration {
            name: "Test RP",
            redirect_uris: &[REDIRECT.to_owned()],
            post_logout_redirect_uris: &[POST_LOGOUT.to_owned()],
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
    (new.client, new.secret.map(|s| s.expose().to_owned()))
}

fn browser(server: &OpServer) -> Browser {
    let sub = subscriber(IMPI);
    let mut b = Browser::new(
        server.bsf_url.clone(),
        Handset {
            impi: sub.impi,
            keys: sub.keys,
            usim: akaid::aka::UsimState::default(),
        },
    )
    .unwrap();
    b.stop_before = Some("http://localhost:9/".into());
    b
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An authorization request URL made by hand: code flow for `client`, `extra` replacing or
/// adding parameters.
pub(crate) fn authorize_url(
    server: &OpServer,
    client_id: &str,
    extra: &[(&str, &str)],
) -> url::Url {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid phone"),
        ("state", "st-1"),
        ("nonce", "n-1"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        params.push((k, v));
    }
    let mut url = server.op_url.join("authorize").unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url
}

fn query(url: &url::Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Logs in with `b` and returns the code the client's redirect URI received.
async fn code_for(b: &mut Browser, url: &url::Url) -> String {
    let landing = b.login(url, Decision::Allow).await.unwrap();
    assert!(landing.url.as_str().starts_with(REDIRECT), "{landing:?}");
    let q = query(&landing.url);
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"), "{q:?}");
    q.get("code").cloned().unwrap_or_else(|| panic!("{q:?}"))
}

/// A token request made by hand; `basic` is (client_id, secret).
async fn token(
    server: &OpServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http().post(server.op_url.join("token").unwrap()).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

async fn code_tokens(server: &OpServer, c: &OidcClient, secret: &str, code: &str) -> (u16, Value) {
    let (status, headers, body) = token(
        server,
        Some((c.client_id.as_str(), secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(headers["cache-control"], "no-store");
    (status, body)
}

async fn userinfo(
    server: &OpServer,
    access_token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = http()
        .get(server.op_url.join("userinfo").unwrap())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A confidential client's login with `offline_access`: the client, its secret, and the
/// code exchange's answer (with a refresh token).
async fn offline_login(server: &OpServer) -> (OidcClient, String, Value) {
    let (c, secret) = client(server, false, None).await;
    let secret = secret.unwrap();
    let url = authorize_url(
        server,
        c.client_id.as_str(),
        &[("scope", "openid offline_access")],
    );
    let code = code_for(&mut browser(server), &url).await;
    let (_, first) = code_tokens(server, &c, &secret, &code).await;
    (c, secret, first)
}

const ALL_ALGS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The whole flow with the `openidconnect` crate as the relying party: discovery, the
/// authorization URL (with PKCE and a nonce), the handset's login and consent, the code
/// exchange, the ID token verified against the JWKS (signature, iss, aud, exp, nonce,
/// at_hash), and userinfo.
async fn openidconnect_login(alg: Option<SigningAlg>, want: CoreJwsSigningAlgorithm) {
    let server = provisioned(None).await;
    let iss = issuer(&server);
    let (c, secret) = client(&server, false, alg).await;
    let http = http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(iss.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.client_id.as_str().to_owned()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("phone".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut b = browser(&server);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.authenticated && landing.consented, "{landing:?}");
    let q = query(&landing.url);
    assert_eq!(q["state"], *csrf.secret());
    assert_eq!(q["iss"], iss);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none(), "no offline_access asked");
    let id_token = tokens.id_token().unwrap();
    assert_eq!(id_token.signing_alg().unwrap(), &want);
    let id_verifier = rp.id_token_verifier().set_allowed_algs(ALL_ALGS.to_vec());
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(amr, ["hwk", "sc"]);
    assert!(claims.auth_time().is_some());
    assert!(claims.auth_context_ref().is_some());
    // The pairwise sub is the one the OpenID 2.0 side gives the same host.
    assert_eq!(claims.subject().as_str().len(), 26);

    let info: CoreUserInfoClaims = rp
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some(MSISDN));
    assert_eq!(info.phone_number_verified(), Some(true));
    // Consented profile claims only: nickname has a claim; email needs the email scope.
    let (_, _, raw) = userinfo(&server, tokens.access_token().secret()).await;
    assert_eq!(raw["nickname"], "ada");
    assert!(raw.get("email").is_none(), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openidconnect_confidential_client_rs256_by_default() {
    openidconnect_login(None, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openidconnect_confidential_client_es256() {
    openidconnect_login(
        Some(SigningAlg::ES256),
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openidconnect_confidential_client_eddsa() {
    openidconnect_login(Some(SigningAlg::EdDSA), CoreJwsSigningAlgorithm::EdDsa).await;
}

/// A public client (no secret) with PKCE and offline_access: the code, then a refresh with
/// the rotated token, each ID token verified by the crate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openidconnect_public_client_with_pkce_and_refresh() {
    let server = provisioned(None).await;
    let iss = issuer(&server);
    let (c, secret) = client(&server, true, None).await;
    assert!(secret.is_none());
    let http = http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(iss.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.client_id.as_str().to_owned()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut b = browser(&server);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    let code = query(&landing.url)["code"].clone();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_verifier = rp.id_token_verifier();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&id_verifier, &nonce)
        .unwrap();
    let sub = claims.subject().clone();
    let refresh = tokens.refresh_token().unwrap().clone();
    let refreshed = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let new_refresh = refreshed.refresh_token().unwrap();
    assert_ne!(new_refresh.secret(), refresh.secret());
    // Core §12.2: no nonce in a refreshed ID token, the same sub and auth_time.
    let claims2 = refreshed
        .id_token()
        .unwrap()
        .claims(&id_verifier, |_: Option<&Nonce>| Ok::<(), String>(()))
        .unwrap();
    assert_eq!(claims2.subject(), &sub);
    assert_eq!(claims2.auth_time(), claims.auth_time());
    let (status, _, info) = userinfo(&server, refreshed.access_token().secret()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], json!(sub.as_str()));
    assert!(info.get("phone_number").is_none(), "phone was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_not_registered_gets_a_page_and_no_redirect() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, false, None).await;
    let other = format!("{REDIRECT}/other");
    let url = authorize_url(&server, c.client_id.as_str(), &[("redirect_uri", &other)]);
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("did not register"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_client_gets_a_page_and_no_redirect() {
    let server = provisioned(None).await;
    let r = http()
        .get(authorize_url(&server, "no-such-client", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_without_pkce_gets_invalid_request() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, true, None).await;
    let r = http()
        .get(authorize_url(&server, c.client_id.as_str(), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let location: url::Url = r.headers()["location"].to_str().unwrap().parse().unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let q = query(&location);
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("PKCE"));
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], issuer(&server));
    assert!(!q.contains_key("code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_verifier_is_invalid_grant() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, true, None).await;
    let verifier = "v".repeat(43);
    let challenge = akaid::oidc::grant::CodeChallenge::s256(&verifier);
    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let code = code_for(&mut browser(&server), &url).await;
    let (status, _, body) = token(
        &server,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", c.client_id.as_str()),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"w".repeat(43)),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    // The code is spent: the right verifier cannot use it now.
    let (status, _, body) = token(
        &server,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", c.client_id.as_str()),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_code_is_refused_and_revokes_the_first_tokens() {
    let server = provisioned(None).await;
    let (c, secret) = client(&server, false, None).await;
    let secret = secret.unwrap();
    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[("scope", "openid phone offline_access")],
    );
    let code = code_for(&mut browser(&server), &url).await;
    let (status, first) = code_tokens(&server, &c, &secret, &code).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access).await.0, 200);
    let (status, second) = code_tokens(&server, &c, &secret, &code).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    let (status, headers, _) = userinfo(&server, access).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let (status, _, body) = token(
        &server,
        Some((c.client_id.as_str(), &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let clock = fixed_clock();
    let server = provisioned(Some(clock.clone())).await;
    let (c, secret) = client(&server, false, None).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let code = code_for(&mut browser(&server), &url).await;
    clock.advance(time::Duration::seconds(
        i64::try_from(server.ctx.config.oidc_code_ttl_secs).unwrap() + 1,
    ));
    let (status, body) = code_tokens(&server, &c, &secret.unwrap(), &code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_reused_after_rotation_revokes_the_grant() {
    let clock = fixed_clock();
    let server = provisioned(Some(clock.clone())).await;
    let (c, secret, first) = offline_login(&server).await;
    let basic = Some((c.client_id.as_str(), secret.as_str()));
    let old = first["refresh_token"].as_str().unwrap();
    let refresh = |presented: String| {
        let server = &server;
        async move {
            token(
                server,
                basic,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &presented),
                ],
            )
            .await
        }
    };
    let (status, _, second) = refresh(old.to_owned()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"].as_str().unwrap(), old);
    assert!(second["id_token"].is_string());
    clock.advance(time::Duration::seconds(60));
    let (status, _, reuse) = refresh(old.to_owned()).await;
    assert_eq!(status, 400);
    assert_eq!(reuse["error"], "invalid_grant");
    // The whole grant is gone: the successor and its access token too.
    let (status, _, body) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _, _) = userinfo(&server, second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_asking_for_more_scope_is_refused_and_the_token_still_works() {
    let server = provisioned(None).await;
    let (c, secret, first) = offline_login(&server).await;
    let basic = Some((c.client_id.as_str(), secret.as_str()));
    let presented = first["refresh_token"].as_str().unwrap();
    let (status, _, body) = token(
        &server,
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", presented),
            ("scope", "openid phone"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Nothing was used up: the same token refreshes, with a narrower scope too.
    let (status, _, body) = token(
        &server,
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", presented),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_client_secret_is_invalid_client_with_a_basic_challenge() {
    let server = provisioned(None).await;
    let (c, secret) = client(&server, false, None).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let code = code_for(&mut browser(&server), &url).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, headers, body) = token(
        &server,
        Some((c.client_id.as_str(), "not-the-secret")),
        &form,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // The code was not spent by the refused request: client_secret_post works with it.
    let mut post = form.to_vec();
    let secret = secret.unwrap();
    post.push(("client_id", c.client_id.as_str()));
    post.push(("client_secret", &secret));
    let (status, _, body) = token(&server, None, &post).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_a_session_is_login_required() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, false, None).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[("prompt", "none")]);
    let landing = browser(&server).login(&url, Decision::Allow).await.unwrap();
    assert!(!landing.authenticated);
    let q = query(&landing.url);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_consent_is_consent_required() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, false, None).await;
    let mut b = browser(&server);
    // Signed in, but the subscriber said Deny.
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let landing = b.login(&url, Decision::Deny).await.unwrap();
    assert_eq!(query(&landing.url)["error"], "access_denied");
    let url = authorize_url(&server, c.client_id.as_str(), &[("prompt", "none")]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(!landing.authenticated && !landing.consented);
    assert_eq!(query(&landing.url)["error"], "consent_required");
    // Once allowed, prompt=none gets a code without a page.
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    code_for(&mut b, &url).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[("prompt", "none")]);
    let landing = b.login(&url, Decision::Deny).await.unwrap();
    assert!(!landing.consented);
    assert!(query(&landing.url).contains_key("code"), "{landing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_exceeded_asks_for_a_fresh_login() {
    let clock = fixed_clock();
    let server = provisioned(Some(clock.clone())).await;
    let (c, secret) = client(&server, false, None).await;
    let secret = secret.unwrap();
    let mut b = browser(&server);
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.authenticated);
    let first_login = akaid::clock::Clock::now(&*clock).unix_timestamp();
    clock.advance(time::Duration::seconds(120));
    // Within max_age: the session's login, no new challenge.
    let url = authorize_url(&server, c.client_id.as_str(), &[("max_age", "600")]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(!landing.authenticated);
    // Beyond it: the handset is challenged again, and auth_time is the new login's.
    let url = authorize_url(&server, c.client_id.as_str(), &[("max_age", "60")]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.authenticated, "{landing:?}");
    let code = query(&landing.url)["code"].clone();
    let (status, tokens) = code_tokens(&server, &c, &secret, &code).await;
    assert_eq!(status, 200);
    let claims = jose::verify_jwt(
        &server.state.key_ring.jwks(),
        tokens["id_token"].as_str().unwrap(),
        Some("JWT"),
    )
    .unwrap();
    assert_eq!(claims["auth_time"], json!(first_login + 120));
    // prompt=none with a max_age the session exceeds: login_required.
    clock.advance(time::Duration::seconds(120));
    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[("prompt", "none"), ("max_age", "60")],
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(query(&landing.url)["error"], "login_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_hint_for_another_number_is_refused() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, false, None).await;
    let mut b = browser(&server);
    let url = authorize_url(&server, c.client_id.as_str(), &[("login_hint", MSISDN)]);
    code_for(&mut b, &url).await;
    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[("login_hint", "+447700900999")],
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.authenticated, "a fresh login was asked for");
    assert_eq!(query(&landing.url)["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_a_token_signed_by_a_rotated_out_key() {
    let clock = fixed_clock();
    let server = provisioned(Some(clock.clone())).await;
    let (c, secret) = client(&server, false, None).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let code = code_for(&mut browser(&server), &url).await;
    let (_, tokens) = code_tokens(&server, &c, &secret.unwrap(), &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access).await.0, 200);
    // The same claims with a far expiry, signed by the key that signed the real token: a
    // token only the key's removal from the JWKS can stop.
    let ring = &server.state.key_ring;
    let old_key = ring.active(SigningAlg::RS256).unwrap();
    let mut claims = jose::verify_jwt(&ring.jwks(), access, Some("at+jwt")).unwrap();
    claims["exp"] = json!(akaid::clock::Clock::now(&*clock).unix_timestamp() + 86_400);
    let long_lived = jose::sign_jwt(&old_key, Some("at+jwt"), &claims).unwrap();
    ring.rotate(&SigningAlg::ALL).await.unwrap();
    assert_eq!(
        userinfo(&server, &long_lived).await.0,
        200,
        "still published"
    );
    clock.advance(ring.overlap() + time::Duration::seconds(1));
    ring.sweep().await.unwrap();
    ring.reload().await.unwrap();
    let (status, headers, _) = userinfo(&server, &long_lived).await;
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_without_a_token_gets_a_bearer_challenge() {
    let server = provisioned(None).await;
    let r = http()
        .get(server.op_url.join("userinfo").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_takes_the_token_from_a_form_post_but_only_once() {
    let server = provisioned(None).await;
    let (c, secret) = client(&server, false, None).await;
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let code = code_for(&mut browser(&server), &url).await;
    let (_, tokens) = code_tokens(&server, &c, &secret.unwrap(), &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let endpoint = server.op_url.join("userinfo").unwrap();
    // RFC 6750 §2.2: the form-encoded body parameter.
    let r = http()
        .post(endpoint.clone())
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let info: Value = r.json().await.unwrap();
    assert!(info["sub"].is_string(), "{info}");
    // Both the header and the body: refused (RFC 6750 §2, "MUST NOT use more than one").
    let r = http()
        .post(endpoint.clone())
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("invalid_request"), "{challenge}");
    // A query parameter is not a way to send it (RFC 6750 §2.3 is not offered).
    let mut in_query = endpoint;
    in_query
        .query_pairs_mut()
        .append_pair("access_token", access);
    assert_eq!(http().get(in_query).send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_userinfo_answer_browser_relying_parties_cors_without_cookies() {
    let server = provisioned(None).await;
    for path in ["token", "userinfo"] {
        let r = http()
            .request(reqwest::Method::OPTIONS, server.op_url.join(path).unwrap())
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{path}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("authorization"), "{path}: {allowed}");
        assert!(
            h.get("access-control-allow-credentials").is_none(),
            "{path}: never with cookies"
        );
    }
    // The answers themselves, errors included, are readable cross-origin.
    let (status, headers, _) = token(&server, None, &[("grant_type", "authorization_code")]).await;
    assert_eq!(status, 401);
    assert_eq!(headers["access-control-allow-origin"], "*");
    let r = http()
        .get(server.op_url.join("userinfo").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()["access-control-expose-headers"],
        "WWW-Authenticate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_returns_to_the_registered_uri() {
    let server = provisioned(None).await;
    let (c, secret) = client(&server, false, None).await;
    let mut b = browser(&server);
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    let code = code_for(&mut b, &url).await;
    let (_, tokens) = code_tokens(&server, &c, &secret.unwrap(), &code).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // An unregistered post_logout_redirect_uri is refused with a page; the session stays.
    let mut logout = server.op_url.join("logout").unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://localhost:9/elsewhere");
    let landing = b.login(&logout, Decision::Allow).await.unwrap();
    assert_eq!(landing.status, 400);
    let url = authorize_url(&server, c.client_id.as_str(), &[("prompt", "none")]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(query(&landing.url).contains_key("code"));
    // The registered one: signed out, back at the client with its state.
    let mut logout = server.op_url.join("logout").unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT)
        .append_pair("state", "bye-1");
    let landing = b.login(&logout, Decision::Allow).await.unwrap();
    assert!(landing.url.as_str().starts_with(POST_LOGOUT), "{landing:?}");
    assert_eq!(query(&landing.url)["state"], "bye-1");
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(query(&landing.url)["error"], "login_required");
}

/// OpenID 2.0 → OpenID Connect Migration 1.0: with scope `openid2` and `openid2_realm`, the
/// ID token's `openid2_id` is the claimed identifier an OpenID 2.0 login at that realm gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid2_id_is_the_identifier_the_openid2_login_gets_at_the_realm() {
    let server = provisioned_with(None, |config| {
        config.openid2_rp_discovery = akaid::config::RpDiscovery::Off;
    })
    .await;
    let (c, secret) = client(&server, false, None).await;
    let realm = "http://localhost:9/";
    let mut b = browser(&server);
    let mut checkid = server.op_url.join("openid").unwrap();
    let select = "http://specs.openid.net/auth/2.0/identifier_select";
    checkid
        .query_pairs_mut()
        .append_pair("openid.ns", "http://specs.openid.net/auth/2.0")
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.claimed_id", select)
        .append_pair("openid.identity", select)
        .append_pair("openid.realm", realm)
        .append_pair("openid.return_to", "http://localhost:9/openid2");
    let landing = b.login(&checkid, Decision::Allow).await.unwrap();
    let claimed = query(&landing.url)["openid.claimed_id"].clone();
    assert!(claimed.starts_with(server.op_url.as_str()), "{claimed}");

    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[("scope", "openid openid2"), ("openid2_realm", realm)],
    );
    let code = code_for(&mut b, &url).await;
    let (status, tokens) = code_tokens(&server, &c, &secret.unwrap(), &code).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jose::verify_jwt(
        &server.state.key_ring.jwks(),
        tokens["id_token"].as_str().unwrap(),
        Some("JWT"),
    )
    .unwrap();
    assert_eq!(claims["openid2_id"], json!(claimed));

    // A realm the redirect URI is not inside is refused at the redirect URI.
    let url = authorize_url(
        &server,
        c.client_id.as_str(),
        &[
            ("scope", "openid openid2"),
            ("openid2_realm", "http://other.example/"),
        ],
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(query(&landing.url)["error"], "invalid_request");
}

/// RP-Initiated Logout 1.0 §2: without an `id_token_hint` any page could sign the subscriber
/// out, so the OP asks first; the answer needs the page's token, bound to the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_without_an_id_token_hint_asks_first() {
    let server = provisioned(None).await;
    let (c, _) = client(&server, false, None).await;
    let mut b = browser(&server);
    let url = authorize_url(&server, c.client_id.as_str(), &[]);
    code_for(&mut b, &url).await;
    let mut logout = server.op_url.join("logout").unwrap();
    logout
        .query_pairs_mut()
        .append_pair("client_id", c.client_id.as_str())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT)
        .append_pair("state", "bye-2");
    let page = b.login(&logout, Decision::Allow).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign out of"), "{}", page.body);
    // Still signed in.
    let silent = authorize_url(&server, c.client_id.as_str(), &[("prompt", "none")]);
    let landing = b.login(&silent, Decision::Allow).await.unwrap();
    assert!(query(&landing.url).contains_key("code"), "{landing:?}");
    let at = page.body.find("name=\"confirm\" value=\"").unwrap() + 22;
    let token = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let cookie = b.cookies(&server.op_url).unwrap();
    let post = |confirm: &str| {
        http()
            .post(server.op_url.join("logout").unwrap())
            .header("cookie", cookie.clone())
            .form(&[
                ("confirm", confirm),
                ("client_id", c.client_id.as_str()),
                ("post_logout_redirect_uri", POST_LOGOUT),
                ("state", "bye-2"),
            ])
            .send()
    };
    // A forged answer gets the question again; the session stays.
    let r = post("forged").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let landing = b.login(&silent, Decision::Allow).await.unwrap();
    assert!(query(&landing.url).contains_key("code"), "{landing:?}");
    // The page's own answer: signed out, back at the client with its state. (The forged
    // answer above replaced the token, so the page is asked for again.)
    let page = b.login(&logout, Decision::Allow).await.unwrap();
    let at = page.body.find("name=\"confirm\" value=\"").unwrap() + 22;
    let token2 = page.body[at..at + page.body[at..].find('"').unwrap()].to_owned();
    assert_ne!(token, token2);
    let r = post(&token2).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(POST_LOGOUT), "{location}");
    assert!(location.contains("state=bye-2"), "{location}");
    let landing = b.login(&silent, Decision::Allow).await.unwrap();
    assert_eq!(query(&landing.url)["error"], "login_required");
}
