//! The OpenID 2.0 provider end to end: python-openid 3.2.0 as the relying party (a real
//! library, in `tests/interop/python/rp.py`), the software handset as the browser, and the
//! negative cases of issue 4 driven directly over HTTP.

use std::process::{Command, Stdio};
use std::sync::Arc;

use akaid::clock::FixedClock;
use akaid::ue::browser::{Browser, Decision, Landing};
use akaid::ue::ub::Handset;
use serde_json::Value;

use crate::support::{OpServer, RpProcess, op_server_with, subscriber};

const IMPI: &str = "alice@ims.example.org";
const MSISDN: &str = "+447700900123";

async fn provisioned(clock: Option<Arc<dyn akaid::clock::Clock>>) -> OpServer {
    provisioned_with(clock, |_| {}).await
}

/// An OP with the test subscriber, whose relying-party discovery (§13) may reach this
/// machine's relying parties (`openid2_rp_discovery_allow = 127.0.0.0/8`), so every login
/// below also checks the python relying party's published return_to.
async fn provisioned_with(
    clock: Option<Arc<dyn akaid::clock::Clock>>,
    configure: impl FnOnce(&mut akaid::config::Config),
) -> OpServer {
    let server = op_server_with(clock, |config| {
        config.openid2_rp_discovery_allow = "127.0.0.0/8".parse().unwrap();
        configure(config);
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

/// python-openid's relying party (`tests/interop/python/rp.py`) or the npm `openid` one.
type PythonRp = RpProcess;

impl RpProcess {
    fn start() -> Option<Self> {
        Self::python("rp.py")
    }

    fn start_node() -> Option<Self> {
        Self::node("rp.js")
    }
}

fn result(landing: &Landing) -> Value {
    assert_eq!(
        landing.status, 200,
        "landed on {}: {}",
        landing.url, landing.body
    );
    serde_json::from_str(&landing.body).unwrap_or_else(|e| panic!("{e}: {}", landing.body))
}

async fn login(rp: &PythonRp, server: &OpServer, b: &mut Browser, query: &str) -> Value {
    let landing = b
        .login(&rp.login_url(&server.op_url, query), Decision::Allow)
        .await
        .unwrap();
    result(&landing)
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_smart_mode_sha256_with_ax_and_pape() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let r = login(
        &rp,
        &server,
        &mut b,
        "mode=smart&assoc=HMAC-SHA256:DH-SHA256&ax=phone&pape=1&sreg=nickname",
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let id = r["identity_url"].as_str().unwrap();
    assert!(id.starts_with(&format!("{}id/", server.op_url)), "{id}");
    assert_eq!(r["endpoint_server_url"], format!("{}openid", server.op_url));
    let cell = &r["ax"]["http://axschema.org/contact/phone/cell"];
    assert_eq!(cell, &serde_json::json!([MSISDN]));
    assert_eq!(
        r["pape"]["auth_policies"],
        serde_json::json!(["http://schemas.openid.net/pape/policies/2007/06/phishing-resistant"])
    );
    assert!(r["pape"]["auth_time"].as_str().is_some());
    assert!(
        r["response_fields"]["openid.assoc_handle"]
            .as_str()
            .is_some()
    );
    // The association python-openid made is a shared (stored, not private) one.
    let handle = r["response_fields"]["openid.assoc_handle"]
        .as_str()
        .unwrap();
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let assoc = server
        .ctx
        .store
        .openid2
        .association(handle, now)
        .await
        .unwrap()
        .unwrap();
    assert!(!assoc.private);
    assert_eq!(assoc.assoc_type, "HMAC-SHA256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openid_smart_mode_login() {
    let Some(rp) = PythonRp::start_node() else {
        return;
    };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let r = login(&rp, &server, &mut b, "mode=smart&ax=phone").await;
    assert_eq!(r["status"], "success", "{r}");
    let id = r["identity_url"].as_str().unwrap();
    assert!(id.starts_with(&format!("{}id/", server.op_url)), "{id}");
    let handle = r["response_fields"]["openid.assoc_handle"]
        .as_str()
        .unwrap();
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let assoc = server
        .ctx
        .store
        .openid2
        .association(handle, now)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !assoc.private,
        "the npm openid package associated (smart mode)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_smart_mode_sha1() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let r = login(&rp, &server, &mut b, "mode=smart&assoc=HMAC-SHA1:DH-SHA1").await;
    assert_eq!(r["status"], "success", "{r}");
    let handle = r["response_fields"]["openid.assoc_handle"]
        .as_str()
        .unwrap();
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let assoc = server
        .ctx
        .store
        .openid2
        .association(handle, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(assoc.assoc_type, "HMAC-SHA1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_stateless_mode_and_a_replay_at_check_authentication() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let first = login(&rp, &server, &mut b, "mode=stateless").await;
    assert_eq!(first["status"], "success", "{first}");
    // The same kind of login again, captured before verification: verified once, then a
    // replay of the same response must fail at check_authentication.
    let landing = b
        .login(
            &rp.login_url(&server.op_url, "mode=stateless&capture=1"),
            Decision::Allow,
        )
        .await
        .unwrap();
    let captured = result(&landing);
    assert_eq!(captured["status"], "captured", "{captured}");
    let url = encode(captured["url"].as_str().unwrap());
    let once = rp.get_json(&format!("complete?url={url}")).await;
    assert_eq!(once["status"], "success", "{once}");
    let again = rp.get_json(&format!("complete?url={url}")).await;
    assert_eq!(again["status"], "failure", "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_tampered_response_fails() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    for mode in ["smart", "stateless"] {
        let landing = b
            .login(
                &rp.login_url(&server.op_url, &format!("mode={mode}&capture=1&ax=phone")),
                Decision::Allow,
            )
            .await
            .unwrap();
        let captured = result(&landing);
        let url = encode(captured["url"].as_str().unwrap());
        let tampered = rp
            .get_json(&format!(
                "tamper?url={url}&field=openid.ax.value.phone&value=%2B15550000000"
            ))
            .await;
        assert_eq!(tampered["status"], "failure", "{mode}: {tampered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_immediate_before_and_after_consent() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    // No session yet: immediate cannot log in.
    let r = login(&rp, &server, &mut b, "immediate=1").await;
    assert_eq!(r["status"], "setup_needed", "{r}");
    // A setup login asks for consent; afterwards immediate succeeds without any page.
    let r = login(&rp, &server, &mut b, "").await;
    assert_eq!(r["status"], "success", "{r}");
    let landing = b
        .login(
            &rp.login_url(&server.op_url, "immediate=1"),
            Decision::Allow,
        )
        .await
        .unwrap();
    assert!(!landing.consented && !landing.authenticated);
    let r = result(&landing);
    assert_eq!(r["status"], "success", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_specific_claimed_identifier_and_someone_elses() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let first = login(&rp, &server, &mut b, "").await;
    let mine = first["identity_url"].as_str().unwrap().to_owned();
    // Logging in with the identifier itself (discovered from its XRDS) gives the same one.
    let landing = b
        .login(
            &format!("{}login?identifier={}", rp.url, encode(&mine))
                .parse()
                .unwrap(),
            Decision::Allow,
        )
        .await
        .unwrap();
    let r = result(&landing);
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["identity_url"], mine.as_str());
    // Another (well-formed) identifier at this OP is not this subscriber's: no assertion.
    let other = format!("{}id/aaaaaaaaaaaaaaaaaaaaaaaaaa", server.op_url);
    let landing = b
        .login(
            &format!("{}login?identifier={}", rp.url, encode(&other))
                .parse()
                .unwrap(),
            Decision::Allow,
        )
        .await
        .unwrap();
    let r = result(&landing);
    assert_eq!(r["status"], "cancel", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_deny_is_cancel_and_nothing_is_remembered() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let landing = b
        .login(&rp.login_url(&server.op_url, ""), Decision::Deny)
        .await
        .unwrap();
    assert!(landing.consented);
    let r = result(&landing);
    assert_eq!(r["status"], "cancel", "{r}");
    let impi = IMPI.parse().unwrap();
    assert!(
        server
            .ctx
            .store
            .consents
            .list(&impi)
            .await
            .unwrap()
            .is_empty()
    );
}

// ------------------------------------------------------------------------------------------
// Without a relying-party library: the negative cases, over HTTP.

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("test 3gpp-gba")
        .build()
        .unwrap()
}

fn kv(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn post_openid(
    server: &OpServer,
    fields: &[(&str, &str)],
) -> (u16, std::collections::HashMap<String, String>) {
    let response = client()
        .post(format!("{}openid", server.op_url))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, kv(&response.text().await.unwrap()))
}

const NS: (&str, &str) = ("openid.ns", "http://specs.openid.net/auth/2.0");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associate_without_encryption_over_plain_http_is_unsupported_type() {
    let server = provisioned(None).await;
    let (status, r) = post_openid(
        &server,
        &[
            NS,
            ("openid.mode", "associate"),
            ("openid.assoc_type", "HMAC-SHA256"),
            ("openid.session_type", "no-encryption"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(r["error_code"], "unsupported-type");
    assert_eq!(r["session_type"], "DH-SHA256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associate_with_a_malformed_dh_modulus_is_an_error() {
    let server = provisioned(None).await;
    // An even "modulus" (0x0100…00, 1024 bits).
    let mut even = vec![0u8; 129];
    even[1] = 0x80;
    use base64::Engine;
    let modulus = base64::engine::general_purpose::STANDARD.encode(&even);
    let (status, r) = post_openid(
        &server,
        &[
            NS,
            ("openid.mode", "associate"),
            ("openid.assoc_type", "HMAC-SHA256"),
            ("openid.session_type", "DH-SHA256"),
            ("openid.dh_modulus", &modulus),
            ("openid.dh_gen", "Ag=="),
            ("openid.dh_consumer_public", "Ag=="),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(r["error"].contains("modulus"), "{r:?}");
    assert!(!r.contains_key("assoc_handle"));
}

/// A checkid_setup URL for a relying party at `rp` (which need not exist).
fn checkid(server: &OpServer, realm: &str, return_to: &str, extra: &[(&str, &str)]) -> url::Url {
    let mut url = url::Url::parse(&format!("{}openid", server.op_url)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair(NS.0, NS.1)
            .append_pair("openid.mode", "checkid_setup")
            .append_pair("openid.claimed_id", akaid::openid2::IDENTIFIER_SELECT)
            .append_pair("openid.identity", akaid::openid2::IDENTIFIER_SELECT)
            .append_pair("openid.realm", realm)
            .append_pair("openid.return_to", return_to);
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_realms_and_return_to_outside_the_realm_get_a_page_never_a_redirect() {
    let server = provisioned(None).await;
    for (realm, return_to) in [
        ("http://rp.example/", "http://evil.example/return"),
        ("http://*.com/", "http://rp.com/return"),
        ("http://*.co.uk/", "http://rp.co.uk/return"),
        ("not a url", "http://rp.example/return"),
        ("http://rp.example/#frag", "http://rp.example/return"),
    ] {
        let response = client()
            .get(checkid(&server, realm, return_to, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{realm} {return_to}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("<h1>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_assoc_handle_gets_invalidate_handle_and_a_private_association() {
    let server = provisioned(None).await;
    let mut b = browser(&server);
    b.stop_before = Some("http://rp.example/".into());
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[("openid.assoc_handle", "no-such-handle")],
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(
        landing
            .url
            .as_str()
            .starts_with("http://rp.example/return?")
    );
    let fields: Vec<(String, String)> = landing.url.query_pairs().into_owned().collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("openid.invalidate_handle").as_deref(),
        Some("no-such-handle")
    );
    let handle = get("openid.assoc_handle").unwrap();
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let assoc = server
        .ctx
        .store
        .openid2
        .association(&handle, now)
        .await
        .unwrap()
        .unwrap();
    assert!(assoc.private);
    // check_authentication confirms it once, and says the unknown handle is invalid.
    let mut check: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k.starts_with("openid."))
        .cloned()
        .collect();
    for (k, v) in check.iter_mut() {
        if k == "openid.mode" {
            *v = "check_authentication".into();
        }
    }
    let pairs: Vec<(&str, &str)> = check
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, r) = post_openid(&server, &pairs).await;
    assert_eq!(status, 200);
    assert_eq!(r["is_valid"], "true");
    assert_eq!(r["invalidate_handle"], "no-such-handle");
    let (_, r) = post_openid(&server, &pairs).await;
    assert_eq!(r["is_valid"], "false", "a response_nonce is good once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_association_is_not_used() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = provisioned(Some(clock.clone())).await;
    // A DH-SHA256 association made by hand (the default group).
    let (status, r) = post_openid(
        &server,
        &[
            NS,
            ("openid.mode", "associate"),
            ("openid.assoc_type", "HMAC-SHA256"),
            ("openid.session_type", "DH-SHA256"),
            ("openid.dh_consumer_public", "Ag=="),
        ],
    )
    .await;
    assert_eq!(status, 200, "{r:?}");
    let handle = r["assoc_handle"].clone();
    let expires_in: i64 = r["expires_in"].parse().unwrap();
    clock.advance(time::Duration::seconds(expires_in + 1));
    let mut b = browser(&server);
    b.stop_before = Some("http://rp.example/".into());
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[("openid.assoc_handle", &handle)],
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    let fields: Vec<(String, String)> = landing.url.query_pairs().into_owned().collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("openid.invalidate_handle"), Some(handle.clone()));
    assert_ne!(get("openid.assoc_handle"), Some(handle));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ua_wrong_password_stale_nonce_and_a_browser_without_gba() {
    use akaid::gba::digest::{Challenge, Credentials, Qop};
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = provisioned(Some(clock.clone())).await;
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[],
    );
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    let challenge_of = |r: &reqwest::Response| {
        Challenge::parse(r.headers()["www-authenticate"].to_str().unwrap()).unwrap()
    };
    // A desktop browser gets a page, not a password dialog.
    let desktop = reqwest::Client::builder()
        .user_agent("Mozilla/5.0")
        .build()
        .unwrap();
    let r = desktop.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("www-authenticate").is_none());
    // A GBA user agent gets the challenge.
    let r = client().get(url.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let challenge = challenge_of(&r);
    assert_eq!(challenge.realm, "3GPP-bootstrapping@127.0.0.1");
    assert!(r.text().await.unwrap().contains("SIM"));
    // A real B-TID with the wrong password: challenged again, not stale.
    let sub = subscriber(IMPI);
    let mut handset = Handset {
        impi: sub.impi,
        keys: sub.keys,
        usim: akaid::aka::UsimState::default(),
    };
    let boot = akaid::ue::ub::UbClient::new()
        .unwrap()
        .bootstrap(&server.bsf_url, &mut handset)
        .await
        .unwrap();
    let answer = |challenge: &Challenge, password: &str| {
        let mut creds = Credentials {
            username: boot.btid.to_string(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: target.clone(),
            response: String::new(),
            algorithm: Some("MD5".into()),
            cnonce: Some("c0ffee".into()),
            nc: Some(1),
            qop: Some(Qop::Auth),
            opaque: challenge.opaque.clone(),
            auts: None,
        };
        let ha1 = akaid::gba::digest::ha1(&creds.username, &creds.realm, password.as_bytes());
        creds.response = creds.expected_response(&ha1, "GET", b"");
        creds.to_header()
    };
    let r = client()
        .get(url.clone())
        .header("authorization", answer(&challenge, "d3JvbmcgcGFzc3dvcmQ="))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!challenge_of(&r).stale);
    // The right password after the nonce expired: stale=true, no login.
    let fresh = challenge_of(&r);
    let naf = akaid::gba::NafId::new("127.0.0.1", akaid::gba::UaProtocolId::HTTP_DIGEST).unwrap();
    let key = akaid::gba::ks_naf(&boot.ks, &boot.rand, IMPI, &naf);
    use base64::Engine;
    let password = base64::engine::general_purpose::STANDARD.encode(key.expose());
    clock.advance(time::Duration::seconds(61));
    let r = client()
        .get(url.clone())
        .header("authorization", answer(&fresh, &password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let stale = challenge_of(&r);
    assert!(stale.stale);
    // The same password on the new nonce logs in (the consent page), once per nc.
    let good = answer(&stale, &password);
    let r = client()
        .get(url.clone())
        .header("authorization", good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("name=\"decision\""));
    let r = client()
        .get(url.clone())
        .header("authorization", good)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "a replayed nonce-count is not accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_needs_the_sessions_csrf_token() {
    let server = provisioned(None).await;
    let mut b = browser(&server);
    b.stop_before = Some("http://rp.example/".into());
    // Log in and answer once, so the browser has a session; then a second realm's consent
    // page, answered with a forged token.
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[],
    );
    b.login(&url, Decision::Allow).await.unwrap();
    let impi = IMPI.parse().unwrap();
    assert_eq!(
        server.ctx.store.consents.list(&impi).await.unwrap().len(),
        1
    );
    // Another client (no session cookie, or another session) posting a consent: refused.
    let r = client()
        .post(format!("{}openid/consent", server.op_url))
        .form(&[
            ("csrf", "guess"),
            ("request", "guess"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        server.ctx.store.consents.list(&impi).await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_serves_xrds_for_the_op_and_user_identifiers() {
    let server = provisioned(None).await;
    let r = client()
        .get(server.op_url.clone())
        .header("accept", "application/xrds+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/xrds+xml");
    let body = r.text().await.unwrap();
    assert!(body.contains("http://specs.openid.net/auth/2.0/server"));
    assert!(body.contains(&format!("{}openid", server.op_url)));
    let r = client().get(server.op_url.clone()).send().await.unwrap();
    assert_eq!(
        r.headers()["x-xrds-location"],
        format!("{}xrds", server.op_url).as_str()
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let id = format!("{}id/abcdefghijklmnopqrstuvwxyz", server.op_url);
    let r = client()
        .get(&id)
        .header("accept", "application/xrds+xml")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("http://specs.openid.net/auth/2.0/signon"));
    assert!(body.contains(&id));
}

/// A login that starts on one `akaid serve` process and finishes on another, both on one
/// PostgreSQL: the Ua challenge comes from A and is answered at B; B's session and pending
/// consent are answered at A; A's response is verified by B's check_authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_process_finishes_on_another() {
    use crate::gba::{KillOnDrop, wait_healthy};
    use akaid::gba::digest::{Challenge, Credentials, Qop};
    let Some(db) = crate::support::postgres_url_with_fresh_schema().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = "3c".repeat(32);
    let sub = subscriber(IMPI);
    let out = crate::support::akaid_env(
        dir.path(),
        &[
            "subscriber",
            "add",
            "--impi",
            IMPI,
            "--k",
            crate::support::K,
            "--opc",
            crate::support::OPC,
        ],
        &[("AKAID_MASTER_KEY", &key), ("AKAID_DATABASE_URL", &db)],
    );
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let mut children = Vec::new();
    let mut ops = Vec::new();
    let mut bsfs = Vec::new();
    for _ in 0..2 {
        let (op, bsf) = (crate::support::free_port(), crate::support::free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_akaid"))
            .current_dir(dir.path())
            .args(["--data-dir", "data", "serve"])
            .args(["--public-url", &format!("http://127.0.0.1:{op}/")])
            .args(["--bsf-url", &format!("http://127.0.0.1:{bsf}/")])
            .env("AKAID_MASTER_KEY", &key)
            .env("AKAID_DATABASE_URL", &db)
            .env("AKAID_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        children.push(KillOnDrop(child));
        ops.push(url::Url::parse(&format!("http://127.0.0.1:{op}/")).unwrap());
        bsfs.push(url::Url::parse(&format!("http://127.0.0.1:{bsf}/")).unwrap());
    }
    for bsf in &bsfs {
        wait_healthy(bsf).await;
    }
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("test 3gpp-gba")
        .cookie_provider(jar)
        .build()
        .unwrap();
    let mut url = ops[0].join("openid").unwrap();
    url.query_pairs_mut()
        .append_pair(NS.0, NS.1)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.claimed_id", akaid::openid2::IDENTIFIER_SELECT)
        .append_pair("openid.identity", akaid::openid2::IDENTIFIER_SELECT)
        .append_pair("openid.realm", "http://rp.example/")
        .append_pair("openid.return_to", "http://rp.example/return");
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    // 1. A challenges.
    let r = http.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let challenge = Challenge::parse(r.headers()["www-authenticate"].to_str().unwrap()).unwrap();
    // 2. The handset bootstraps (with B's BSF) and answers at B.
    let mut handset = Handset {
        impi: sub.impi,
        keys: sub.keys,
        usim: akaid::aka::UsimState::default(),
    };
    let boot = akaid::ue::ub::UbClient::new()
        .unwrap()
        .bootstrap(&bsfs[1], &mut handset)
        .await
        .unwrap();
    let naf = akaid::gba::NafId::new("127.0.0.1", akaid::gba::UaProtocolId::HTTP_DIGEST).unwrap();
    let ks_naf = akaid::gba::ks_naf(&boot.ks, &boot.rand, IMPI, &naf);
    use base64::Engine;
    let password = base64::engine::general_purpose::STANDARD.encode(ks_naf.expose());
    let mut creds = Credentials {
        username: boot.btid.to_string(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: target.clone(),
        response: String::new(),
        algorithm: Some("MD5".into()),
        cnonce: Some("0a0b0c".into()),
        nc: Some(1),
        qop: Some(Qop::Auth),
        opaque: challenge.opaque.clone(),
        auts: None,
    };
    let ha1 = akaid::gba::digest::ha1(&creds.username, &creds.realm, password.as_bytes());
    creds.response = creds.expected_response(&ha1, "GET", b"");
    let mut at_b = ops[1].join("openid").unwrap();
    at_b.set_query(url.query());
    let r = http
        .get(at_b)
        .header("authorization", creds.to_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "B accepts A's nonce");
    let page = r.text().await.unwrap();
    let field = |name: &str| {
        let needle = format!("name=\"{name}\" value=\"");
        let i = page.find(&needle).unwrap() + needle.len();
        page[i..i + page[i..].find('"').unwrap()].to_owned()
    };
    // 3. The consent (pending in B's session) is answered at A.
    let r = http
        .post(ops[0].join("openid/consent").unwrap())
        .form(&[
            ("csrf", field("csrf")),
            ("request", field("request")),
            ("decision", "allow".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with("http://rp.example/return?"));
    // 4. B verifies A's response, once.
    let mut fields: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    for (k, v) in fields.iter_mut() {
        if k == "openid.mode" {
            *v = "check_authentication".into();
        }
    }
    for expected in ["is_valid:true", "is_valid:false"] {
        let text = http
            .post(ops[1].join("openid").unwrap())
            .form(&fields)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(expected), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_policies_allow_without_prompt_deny_and_stable_identifiers() {
    use akaid::store::RealmPolicy;
    let server = provisioned(None).await;
    let mut out = Vec::new();
    let set = |realm: &'static str, policy, stable| {
        let ctx = server.ctx.clone();
        async move {
            let mut out = Vec::new();
            akaid::cli::realm_set(&ctx, realm, policy, stable, &mut out).await
        }
    };
    assert!(
        set("http://*.com/", RealmPolicy::Allow, false)
            .await
            .is_err(),
        "over-broad"
    );
    set("http://a.example/", RealmPolicy::Allow, true)
        .await
        .unwrap();
    set("http://b.example/", RealmPolicy::Allow, true)
        .await
        .unwrap();
    set("http://c.example/", RealmPolicy::Deny, false)
        .await
        .unwrap();
    akaid::cli::realm_list(&server.ctx, &mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3);
    let mut b = browser(&server);
    b.stop_before = Some("http://".into());
    let mut identity = Vec::new();
    for site in ["a", "b"] {
        let realm = format!("http://{site}.example/");
        let url = checkid(&server, &realm, &format!("{realm}return"), &[]);
        let landing = b.login(&url, Decision::Allow).await.unwrap();
        assert!(!landing.consented, "allowed realms get no consent page");
        let pairs: Vec<(String, String)> = landing.url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("openid.mode"), "id_res");
        identity.push(get("openid.claimed_id"));
    }
    assert_eq!(
        identity[0], identity[1],
        "a stable identifier is the same at both realms"
    );
    // A denied realm: the person gets a page saying the operator blocks the site (nothing is
    // sent to it); checkid_immediate, with no person to read a page, gets cancel.
    let url = checkid(&server, "http://c.example/", "http://c.example/return", &[]);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(landing.status, 403, "{}", landing.body);
    assert!(landing.url.as_str().starts_with(server.op_url.as_str()));
    assert!(
        landing
            .body
            .contains("does not allow signing in to c.example"),
        "{}",
        landing.body
    );
    let mut url = checkid(&server, "http://c.example/", "http://c.example/return", &[]);
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs.iter().map(|(k, v)| {
            let v = if k == "openid.mode" {
                "checkid_immediate"
            } else {
                v.as_str()
            };
            (k.as_str(), v)
        }));
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    let mode = landing
        .url
        .query_pairs()
        .find(|(k, _)| k == "openid.mode")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(mode, "cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pape_max_auth_age_makes_the_handset_sign_in_again_and_the_sweep_clears_expired_state() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = provisioned(Some(clock.clone())).await;
    let mut b = browser(&server);
    b.stop_before = Some("http://rp.example/".into());
    let plain = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[],
    );
    let first = b.login(&plain, Decision::Allow).await.unwrap();
    assert!(first.authenticated);
    clock.advance(time::Duration::seconds(30));
    let again = b.login(&plain, Decision::Allow).await.unwrap();
    assert!(!again.authenticated, "the session is reused");
    let pape = [
        ("openid.ns.pape", akaid::openid2::PAPE_NS),
        ("openid.pape.max_auth_age", "10"),
    ];
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &pape,
    );
    let fresh = b.login(&url, Decision::Allow).await.unwrap();
    assert!(
        fresh.authenticated,
        "a login older than max_auth_age is redone"
    );
    let pairs: Vec<(String, String)> = fresh.url.query_pairs().into_owned().collect();
    let auth_time = &pairs
        .iter()
        .find(|(k, _)| k == "openid.pape.auth_time")
        .unwrap()
        .1;
    let now = akaid::clock::Clock::now(&*clock);
    assert_eq!(
        auth_time,
        &akaid::openid2::signing::format_timestamp(now).unwrap()
    );
    // Nine hours on, the sweep removes the nonces, the private association and the session.
    clock.advance(time::Duration::hours(9));
    let state = akaid::AppState::new(server.ctx.clone());
    akaid::web::sweep(&state).await;
    let handle = &pairs
        .iter()
        .find(|(k, _)| k == "openid.assoc_handle")
        .unwrap()
        .1;
    let later = akaid::clock::Clock::now(&*clock);
    assert!(
        server
            .ctx
            .store
            .openid2
            .association(handle, later - time::Duration::hours(10))
            .await
            .unwrap()
            .is_none(),
        "the row itself is gone, not only expired"
    );
    assert_eq!(server.ctx.store.ua_nonces.sweep(later).await.unwrap(), 0);
    assert_eq!(
        server.ctx.store.login_sessions.sweep(later).await.unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associate_is_rate_limited_per_address() {
    let server = provisioned(None).await;
    let fields = [
        NS,
        ("openid.mode", "associate"),
        ("openid.assoc_type", "HMAC-SHA256"),
        ("openid.session_type", "DH-SHA256"),
        ("openid.dh_consumer_public", "Ag=="),
    ];
    let limit = server.ctx.config.openid2_associate_limit_per_ip;
    assert!(limit > 0);
    let mut statuses = Vec::new();
    // Twice the budget within (at most) two clock seconds: some must be refused.
    for _ in 0..(limit * 2 + 1) {
        let response = client()
            .post(format!("{}openid", server.op_url))
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert!(response.headers().get("retry-after").is_some());
            let text = response.text().await.unwrap();
            assert!(kv(&text)["error"].contains("too many"), "{text}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&200));
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associate_without_encryption_over_plain_http_where_the_operator_allows_it() {
    let server = provisioned_with(None, |c| c.openid2_no_encryption_over_http = true).await;
    let (status, r) = post_openid(
        &server,
        &[
            NS,
            ("openid.mode", "associate"),
            ("openid.assoc_type", "HMAC-SHA256"),
            ("openid.session_type", "no-encryption"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{r:?}");
    assert_eq!(r["session_type"], "no-encryption");
    assert!(!r.contains_key("enc_mac_key"));
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(&r["mac_key"])
        .unwrap();
    assert_eq!(key.len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_receives_profile_fields_by_sreg_and_ax_with_consent() {
    use akaid::profile::ProfileField;
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let impi: akaid::ids::Impi = IMPI.parse().unwrap();
    let profiles = &server.ctx.store.profiles;
    for (field, value) in [
        (ProfileField::Email, "ada@example.org"),
        (ProfileField::Fullname, "Ada Lovelace"),
        (ProfileField::Country, "GB"),
    ] {
        assert!(
            profiles
                .set_profile_field(&impi, field, Some(value))
                .await
                .unwrap()
        );
    }
    let mut b = browser(&server);
    let query = format!(
        "sreg=email,fullname,nickname&ax=phone,{}",
        encode(ProfileField::Country.ax_type())
    );
    let url = rp.login_url(&server.op_url, &query);
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.consented);
    let r = result(&landing);
    assert_eq!(r["status"], "success", "{r}");
    // The subscriber has no nickname: it is neither asked about nor sent.
    assert_eq!(
        r["sreg"],
        serde_json::json!({"email": "ada@example.org", "fullname": "Ada Lovelace"})
    );
    assert_eq!(
        r["ax"][ProfileField::Country.ax_type()],
        serde_json::json!(["GB"])
    );
    assert_eq!(
        r["ax"]["http://axschema.org/contact/phone/cell"],
        serde_json::json!([MSISDN])
    );
    for signed in ["sreg.email", "sreg.fullname"] {
        assert!(
            r["signed_fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().ends_with(signed)),
            "{signed} is not signed: {r}"
        );
    }
    let realm = format!("openid2:{}", rp.url);
    let consent = server
        .ctx
        .store
        .consents
        .get(&impi, &realm)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consent.shared, "identifier phone email fullname country");

    // The same request again: remembered, no page.
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(!landing.consented);
    assert_eq!(result(&landing)["status"], "success");
    // Once the operator adds a nickname, the site would get something new: asked again.
    profiles
        .set_profile_field(&impi, ProfileField::Nickname, Some("ada"))
        .await
        .unwrap();
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(landing.consented);
    let r = result(&landing);
    assert_eq!(r["sreg"]["nickname"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_to_the_relying_party_does_not_list_gets_a_page_never_a_redirect() {
    let Some(rp) = PythonRp::start() else { return };
    // The python relying party publishes <base>return as its only return_to (§13).
    let server = provisioned(None).await;
    let mut b = browser(&server);
    let elsewhere = format!("{}elsewhere", rp.url);
    let url = rp.login_url(&server.op_url, &format!("return_to={}", encode(&elsewhere)));
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(landing.status, 400, "{}", landing.body);
    assert!(landing.url.as_str().starts_with(server.op_url.as_str()));
    assert!(landing.body.contains("does not list"), "{}", landing.body);
    assert!(!landing.consented);
    let impi = IMPI.parse().unwrap();
    assert!(
        server
            .ctx
            .store
            .consents
            .list(&impi)
            .await
            .unwrap()
            .is_empty()
    );
    // A listed return_to with a query of its own is inside the listed one (§9.2.1).
    let r = login(&rp, &server, &mut b, "capture=1").await;
    assert_eq!(r["status"], "captured", "{r}");
    assert!(
        r["url"].as_str().unwrap().contains("openid.mode=id_res"),
        "{r}"
    );

    // By default discovery reaches no loopback or private address: the same request is not
    // checked at all, and goes through to the relying party.
    let default = provisioned_with(None, |c| {
        c.openid2_rp_discovery_allow = akaid::web::client_ip::CidrList::default();
    })
    .await;
    let mut b = browser(&default);
    let url = rp.login_url(
        &default.op_url,
        &format!("return_to={}", encode(&elsewhere)),
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert!(
        landing.url.as_str().starts_with(&elsewhere),
        "{} {}",
        landing.url,
        landing.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_discovery_require_refuses_a_site_that_lists_nothing() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned_with(None, |c| {
        c.openid2_rp_discovery = akaid::config::RpDiscovery::Require;
    })
    .await;
    let mut b = browser(&server);
    // Under <base>nothing/ the relying party publishes no XRDS.
    let realm = format!("{}nothing/", rp.url);
    let return_to = format!("{realm}return");
    let url = rp.login_url(
        &server.op_url,
        &format!("realm={}&return_to={}", encode(&realm), encode(&return_to)),
    );
    let landing = b.login(&url, Decision::Allow).await.unwrap();
    assert_eq!(landing.status, 400, "{}", landing.body);
    assert!(
        landing.body.contains("cannot be checked"),
        "{}",
        landing.body
    );
    // A site that lists its return_to is served.
    let r = login(&rp, &server, &mut b, "mode=smart").await;
    assert_eq!(r["status"], "success", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openid_speaks_openid_1_1_through_a_delegating_identity_page() {
    let Some(rp) = PythonRp::start() else { return };
    let server = provisioned(None).await;
    let mut b = browser(&server);
    // The identifier this subscriber has at the relying party's realm, from a 2.0 login.
    let r = login(&rp, &server, &mut b, "mode=smart").await;
    assert_eq!(r["status"], "success", "{r}");
    let ours = r["identity_url"].as_str().unwrap().to_owned();
    let endpoint = format!("{}openid", server.op_url);
    let page = |delegate: &str| {
        format!(
            "{}user11?server={}&delegate={}",
            rp.url,
            encode(&endpoint),
            encode(delegate)
        )
    };
    // A page that delegates to it in OpenID 1.1 terms only: python-openid speaks 1.1 (§14).
    for mode in ["smart", "stateless"] {
        let url: url::Url = format!(
            "{}login?identifier={}&mode={mode}&assoc=HMAC-SHA1:DH-SHA1",
            rp.url,
            encode(&page(&ours))
        )
        .parse()
        .unwrap();
        let landing = b.login(&url, Decision::Allow).await.unwrap();
        let r = result(&landing);
        assert_eq!(r["status"], "success", "{mode}: {r}");
        assert_eq!(r["identity_url"], page(&ours));
        let fields = &r["response_fields"];
        assert!(fields.get("openid.ns").is_none(), "{r}");
        assert_eq!(fields["openid.identity"], ours);
        assert_eq!(fields["openid.mode"], "id_res");
    }
    // Delegating to someone else's identifier: cancelled, never asserted.
    let other = format!("{}id/aaaaaaaaaaaaaaaaaaaaaaaaaa", server.op_url);
    let url: url::Url = format!("{}login?identifier={}", rp.url, encode(&page(&other)))
        .parse()
        .unwrap();
    let r = result(&b.login(&url, Decision::Allow).await.unwrap());
    assert_eq!(r["status"], "cancel", "{r}");
}

/// The value of the first `name="csrf"` hidden field on a page.
fn csrf_on(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_lists_allowed_sites_and_revoking_brings_consent_back() {
    let server = provisioned(None).await;
    let mut b = browser(&server);
    b.stop_before = Some("http://rp.example/".into());
    let url = checkid(
        &server,
        "http://rp.example/",
        "http://rp.example/return",
        &[],
    );
    assert!(b.login(&url, Decision::Allow).await.unwrap().consented);
    assert!(!b.login(&url, Decision::Allow).await.unwrap().consented);

    let account = server.op_url.join("account").unwrap();
    let page = b.login(&account, Decision::Allow).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h2>rp.example</h2>"), "{}", page.body);
    assert!(
        page.body
            .contains("An identifier for you that only this site gets")
    );
    let csrf = csrf_on(&page.body);
    let cookie = b.cookies(&account).unwrap();
    let revoke = server.op_url.join("account/revoke").unwrap();
    let post = |cookie: Option<String>, token: String| {
        let mut request = client().post(revoke.clone()).form(&[
            ("csrf", token.as_str()),
            ("relying_party", "openid2:http://rp.example/"),
        ]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let impi = IMPI.parse().unwrap();
    let consents = || server.ctx.store.consents.list(&impi);
    // Without the session, or with a token that is not the session's: refused, nothing gone.
    let r = post(None, csrf.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = post(Some(cookie.clone()), "guess".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(consents().await.unwrap().len(), 1);
    // With both: gone, and back to the page, which no longer lists it.
    let r = post(Some(cookie.clone()), csrf).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/account");
    assert!(consents().await.unwrap().is_empty());
    let page = b.login(&account, Decision::Allow).await.unwrap();
    assert!(!page.body.contains("rp.example"), "{}", page.body);
    // The next sign-in asks again.
    assert!(b.login(&url, Decision::Allow).await.unwrap().consented);

    // A browser without a GBA module is told to use the phone, not challenged.
    let desktop = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .build()
        .unwrap();
    let r = desktop.get(account.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("www-authenticate").is_none());
    // A handset without a session is challenged.
    let r = client().get(account).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
