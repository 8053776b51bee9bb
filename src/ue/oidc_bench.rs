//! `akaid ue bench --oidc ISSUER`: complete OpenID Connect code flows per second, as a
//! confidential relying party runs them, against any OP (akaid, or another one measured the
//! same way on the same machine): `bench/oidc_flow_bench.md` describes the measurement.
//!
//! Before the clock starts, each handset signs in once through the OP's `/authorize` (for
//! akaid: bootstrap, Ua, consent; for an OP without GBA, whatever its pages do without a
//! person) and keeps its session cookies. Then one flow is: the authorization request with
//! the session (PKCE S256, state, nonce) answered by a redirect with the code, the token
//! request (`client_secret_basic`), and the ID token verified here: signature against the
//! OP's JWKS (fetched once), `iss`, `aud`, `nonce`, `exp`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use base64::Engine;
use sha2::Digest;
use url::Url;

use super::bench::{BenchReport, Failures, handset, report};
use super::browser::{Browser, Decision};
use super::raw_http::RawConnection;
use super::ub::UeError;
use crate::oidc::jose::{Jwks, check_time, verify_jwt};

/// Settings of the OIDC mode.
#[derive(Debug, Clone)]
pub struct OidcBenchSettings {
    /// The issuer; its `/.well-known/openid-configuration` names the endpoints.
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub bsf: Url,
    pub seed: String,
    pub subscribers: u64,
    pub concurrency: usize,
    pub duration: Duration,
}

/// What one flow needs, shared by the workers.
#[derive(Debug)]
struct Flow {
    issuer: String,
    authorize: Url,
    token: Url,
    jwks: Jwks,
    client_id: String,
    redirect_uri: String,
    basic: HeaderValue,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_b64url<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    b64url(&bytes)
}

fn form(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-encoded first).
fn basic(client_id: &str, secret: &str) -> Result<HeaderValue, UeError> {
    let credentials = format!("{}:{}", form(client_id), form(secret));
    HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    ))
    .map_err(|e| UeError::Protocol(e.to_string()))
}

async fn discover(settings: &OidcBenchSettings) -> Result<Flow, UeError> {
    let http = |e: reqwest::Error| UeError::Http(e.to_string());
    let base = settings.issuer.as_str().trim_end_matches('/');
    let metadata: serde_json::Value =
        reqwest::get(format!("{base}/.well-known/openid-configuration"))
            .await
            .map_err(http)?
            .json()
            .await
            .map_err(http)?;
    let endpoint = |name: &str| -> Result<Url, UeError> {
        metadata[name]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .ok_or_else(|| UeError::Protocol(format!("the discovery document has no {name}")))
    };
    let jwks: Jwks = reqwest::get(endpoint("jwks_uri")?)
        .await
        .map_err(http)?
        .json()
        .await
        .map_err(http)?;
    Ok(Flow {
        issuer: metadata["issuer"].as_str().unwrap_or(base).to_owned(),
        authorize: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
        jwks,
        client_id: settings.client_id.clone(),
        redirect_uri: settings.redirect_uri.clone(),
        basic: basic(&settings.client_id, &settings.client_secret)?,
    })
}

impl Flow {
    /// The authorization request's URL with fresh PKCE, state and nonce.
    fn authorization(&self) -> (Url, String, String, String) {
        let (state, nonce, verifier) = (
            random_b64url::<16>(),
            random_b64url::<16>(),
            random_b64url::<32>(),
        );
        let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
        let mut url = self.authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url, state, nonce, verifier)
    }

    /// One complete flow over `connection` (to the OP's host).
    async fn run(
        &self,
        connection: &mut RawConnection,
        cookie: &HeaderValue,
    ) -> Result<(), String> {
        let (url, state, nonce, verifier) = self.authorization();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let request =
            axum::http::Request::get(target).header(axum::http::header::COOKIE, cookie.clone());
        let (parts, _) = connection.send(request, axum::body::Bytes::new()).await?;
        let location = parts
            .headers
            .get(axum::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("authorize answered {} without a redirect", parts.status))?;
        let answer = Url::parse(location)
            .or_else(|_| self.authorize.join(location))
            .map_err(|e| format!("{location}: {e}"))?;
        if !answer.as_str().starts_with(&self.redirect_uri) {
            return Err(format!("authorize redirected elsewhere: {location}"));
        }
        let (mut code, mut returned_state) = (None, None);
        for (k, v) in answer.query_pairs() {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => returned_state = Some(v.into_owned()),
                "error" => return Err(format!("authorize: {location}")),
                _ => {}
            }
        }
        let code = code.ok_or_else(|| format!("no code in {location}"))?;
        if returned_state.as_deref() != Some(&state) {
            return Err("the state came back changed".into());
        }
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
            form(&code),
            form(&self.redirect_uri)
        );
        let request = axum::http::Request::post(self.token.path())
            .header(
                axum::http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(axum::http::header::AUTHORIZATION, self.basic.clone());
        let (parts, body) = connection
            .send(request, axum::body::Bytes::from(body))
            .await?;
        if !parts.status.is_success() {
            return Err(format!(
                "token: {} {}",
                parts.status,
                String::from_utf8_lossy(&body)
            ));
        }
        let tokens: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("token response: {e}"))?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or("the token response has no id_token")?;
        let claims = verify_jwt(&self.jwks, id_token, None).map_err(|e| e.to_string())?;
        check_time(
            &claims,
            crate::clock::Clock::now(&crate::clock::SystemClock),
            time::Duration::seconds(30),
        )
        .map_err(|e| e.to_string())?;
        let aud_ok = match &claims["aud"] {
            serde_json::Value::String(a) => a == &self.client_id,
            serde_json::Value::Array(a) => a.iter().any(|v| v == self.client_id.as_str()),
            _ => false,
        };
        if claims["iss"] != self.issuer.as_str() || !aud_ok || claims["nonce"] != nonce.as_str() {
            return Err(format!("the ID token does not check out: {claims}"));
        }
        Ok(())
    }
}

/// `akaid ue bench --oidc ISSUER`.
pub async fn run_flows(settings: OidcBenchSettings) -> Result<BenchReport, UeError> {
    let flow = Arc::new(discover(&settings).await?);
    // Sign each handset in once and keep its session cookies for the authorization endpoint.
    let mut cookies = Vec::new();
    for i in 0..settings.subscribers.max(1) {
        let mut browser = Browser::new(settings.bsf.clone(), handset(&settings.seed, i)?)?;
        browser.stop_before = Some(settings.redirect_uri.clone());
        let (url, ..) = flow.authorization();
        browser.login(&url, Decision::Allow).await?;
        let cookie = browser
            .cookies(&flow.authorize)
            .and_then(|c| HeaderValue::from_str(&c).ok())
            .ok_or_else(|| UeError::Protocol("the OP set no session cookie".into()))?;
        cookies.push(cookie);
    }
    if flow.authorize.origin() != flow.token.origin() {
        return Err(UeError::Protocol(
            "the authorization and token endpoints are on different origins".into(),
        ));
    }
    let cookies = Arc::new(cookies);
    let failures = Arc::new(Failures::default());
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut workers = Vec::new();
    for w in 0..settings.concurrency.max(1) {
        let (flow, cookies, failures) = (flow.clone(), cookies.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let cookie = &cookies[w % cookies.len()];
            let mut latencies = Vec::new();
            let mut connection = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                if connection.is_none() {
                    match RawConnection::open(&flow.authorize).await {
                        Ok(c) => connection = Some(c),
                        Err(e) => {
                            failures.record(e);
                            continue;
                        }
                    }
                }
                let Some(c) = connection.as_mut() else {
                    continue;
                };
                match flow.run(c, cookie).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        connection = None;
                        failures.record(e);
                    }
                }
            }
            latencies
        }));
    }
    report("code flows", started, workers, &failures).await
}
