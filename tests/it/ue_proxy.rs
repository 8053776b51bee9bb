//! `akaid ue proxy` (DESIGN.md §4, TS 24.109 §5): the proxy in process between a plain
//! `reqwest` client playing a desktop browser (no `3gpp-gba` in its User-Agent, redirects not
//! followed, cookies kept) and the OP and BSF in process; raw sockets where the test needs
//! to see the bytes (hop-by-hop headers, CONNECT).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use akaid::clock::FixedClock;
use akaid::ue::proxy::{ProxySettings, serve};
use akaid::ue::ub::Handset;
use reqwest::cookie::CookieStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::oidc::flow::{IMPI, REDIRECT, authorize_url, client, provisioned};
use crate::support::{OpServer, subscriber};

/// What a desktop browser says of itself: no GBA module.
const DESKTOP_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0";

/// The OP and BSF with the subscriber and a registered client; the client's id.
async fn signed_up(clock: Option<Arc<dyn akaid::clock::Clock>>) -> (OpServer, String) {
    let server = provisioned(clock).await;
    let (client, _) = client(&server, false, None).await;
    (server, client.client_id.as_str().to_owned())
}

/// A proxy that keeps the USIM state in a file (in a directory that lives as long as the
/// returned `TempDir`).
async fn proxy_with_usim_file(bsf: &Url) -> (Url, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("usim.json");
    (start_proxy(bsf, Some(state.clone())).await, state, dir)
}

/// A BSF URL nothing answers at: for what needs no GBA.
fn server_less_bsf() -> Url {
    format!("http://127.0.0.1:{}/", crate::support::free_port())
        .parse()
        .unwrap()
}

async fn bare_proxy() -> Url {
    start_proxy(&server_less_bsf(), None).await
}

/// Starts the proxy on a port of its own; returns its URL.
async fn start_proxy(bsf: &Url, usim_state_file: Option<PathBuf>) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sub = subscriber(IMPI);
    let settings = ProxySettings {
        bsf: bsf.clone(),
        handset: Handset {
            impi: sub.impi,
            keys: sub.keys,
            usim: akaid::aka::UsimState::default(),
        },
        usim_state_file,
    };
    tokio::spawn(async move { serve(listener, settings).await.unwrap() });
    format!("http://{addr}/").parse().unwrap()
}

/// A desktop browser: its own cookie jar, redirects left to the test, through `proxy` if given.
fn browser(proxy: Option<&Url>) -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let builder = reqwest::Client::builder()
        .user_agent(DESKTOP_UA)
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none());
    let builder = match proxy {
        Some(p) => builder.proxy(reqwest::Proxy::all(p.as_str()).unwrap()),
        None => builder.no_proxy(),
    };
    (builder.build().unwrap(), jar)
}

fn authorize(server: &OpServer, client_id: &str) -> Url {
    authorize_url(server, client_id, &[("state", "st-proxy")])
}

/// The value of hidden input `name` in `html` (values here are base64url: no entities).
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} field in {html}"));
    let rest = &html[at..];
    let value = &rest[rest.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_owned()
}

fn form_action(html: &str) -> String {
    let form = &html[html.find("<form").unwrap()..];
    let action = &form[form.find("action=\"").unwrap() + 8..];
    action[..action.find('"').unwrap()].to_owned()
}

/// Asserts `response` is the consent page; returns its HTML.
async fn consent_page(response: reqwest::Response) -> String {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{headers:?}\n{body}");
    assert!(body.contains("name=\"decision\""), "{body}");
    body
}

/// Slots of the USIM state file that have accepted a SEQ: one per bootstrap from fresh.
fn used_slots(path: &Path) -> usize {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    state["seq_ms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_u64() != Some(0))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_browser_signs_in_with_oidc_through_the_proxy() {
    let (server, client_id) = signed_up(None).await;
    let (proxy, state, _dir) = proxy_with_usim_file(&server.bsf_url).await;
    let (http, jar) = browser(Some(&proxy));

    let response = http
        .get(authorize(&server, &client_id))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().contains_key(reqwest::header::SET_COOKIE),
        "the OP's session cookie must reach the browser: {:?}",
        response.headers()
    );
    assert!(!response.headers().contains_key("www-authenticate"));
    let page = consent_page(response).await;
    assert!(
        jar.cookies(&server.op_url).is_some(),
        "the browser holds the OP's cookie"
    );
    // The bootstrap's USIM state was written.
    assert_eq!(used_slots(&state), 1);

    let action = server.op_url.join(&form_action(&page)).unwrap();
    let response = http
        .post(action)
        .form(&[
            ("csrf", hidden(&page, "csrf")),
            ("request", hidden(&page, "request")),
            ("decision", "allow".into()),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{response:?}");
    let location: Url = response.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st-proxy");
    assert!(!query["code"].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_proxy_the_same_browser_is_told_it_needs_a_sim() {
    let (server, client_id) = signed_up(None).await;
    let (http, _) = browser(None);
    let response = http
        .get(authorize(&server, &client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("www-authenticate"));
    let body = response.text().await.unwrap();
    assert!(body.contains("SIM"), "{body}");
    assert!(!body.contains("name=\"decision\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_is_resent_whole_after_the_challenge() {
    // OIDC allows the authorization request as a form POST (Core §3.1.2.1): every parameter
    // is in the body, and auth-int covers it, so the consent page comes only if the resent
    // request carried the same body.
    let (server, client_id) = signed_up(None).await;
    let proxy = start_proxy(&server.bsf_url, None).await;
    let (http, _) = browser(Some(&proxy));
    let response = http
        .post(server.op_url.join("authorize").unwrap())
        .form(
            &authorize(&server, &client_id)
                .query_pairs()
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    consent_page(response).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_browsers_share_one_bootstrap() {
    let (server, client_id) = signed_up(None).await;
    let (proxy, state, _dir) = proxy_with_usim_file(&server.bsf_url).await;
    let url = authorize(&server, &client_id);
    let sign_ins = (0..4).map(|_| {
        let (http, _) = browser(Some(&proxy));
        let url = url.clone();
        tokio::spawn(async move { consent_page(http.get(url).send().await.unwrap()).await })
    });
    for sign_in in sign_ins.collect::<Vec<_>>() {
        sign_in.await.unwrap();
    }
    assert_eq!(used_slots(&state), 1, "one bootstrap served all four");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_bootstraps_again_when_the_bsf_has_forgotten_its_b_tid() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let (server, client_id) = signed_up(Some(clock.clone())).await;
    let (proxy, state, _dir) = proxy_with_usim_file(&server.bsf_url).await;
    let url = authorize(&server, &client_id);

    let (first, _) = browser(Some(&proxy));
    consent_page(first.get(url.clone()).send().await.unwrap()).await;
    assert_eq!(used_slots(&state), 1);

    // The B-TID expires at the BSF; the proxy, on the real clock, still takes it for valid
    // and answers with it first. A new browser has no OP session, so Ua runs again.
    let lifetime = server.ctx.config.bootstrap_lifetime_secs;
    clock.advance(time::Duration::seconds(lifetime as i64 + 1));
    let (second, _) = browser(Some(&proxy));
    consent_page(second.get(url).send().await.unwrap()).await;
    assert_eq!(used_slots(&state), 2, "a second bootstrap");
}

/// A NAF of the test's own on 127.0.0.1: it challenges a request without an answer with
/// nonce `n1`, calls a right answer to `n1` stale (new nonce `n2`), and lets a right answer to
/// `n2` in, checking each answer against Ks_NAF from the BSF, the method and the body.
async fn stale_naf(keys: Arc<dyn akaid::gba::zn::KeyService>) -> (Url, Arc<AtomicUsize>) {
    use akaid::gba::digest::{Challenge, Credentials, Qop, ha1};
    use axum::http::{HeaderMap, Method, StatusCode};
    use base64::Engine as _;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let challenge = |nonce: &str, stale: bool| {
        Challenge {
            realm: "3GPP-bootstrapping@127.0.0.1".into(),
            nonce: nonce.into(),
            algorithm: Some("MD5".into()),
            qop: vec![Qop::AuthInt, Qop::Auth],
            opaque: None,
            stale,
        }
        .to_header()
    };
    let app = axum::Router::new().fallback(
        move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (counter, keys) = (counter.clone(), keys.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let unauthorized = |nonce, stale| {
                    let header = challenge(nonce, stale);
                    (
                        StatusCode::UNAUTHORIZED,
                        [("www-authenticate", header)],
                        String::new(),
                    )
                };
                let Some(authorization) = headers.get("authorization") else {
                    return unauthorized("n1", false);
                };
                let creds = Credentials::parse(authorization.to_str().unwrap()).unwrap();
                assert_eq!(creds.uri, uri.to_string());
                assert_eq!(creds.nc, Some(1));
                let naf_id =
                    akaid::gba::NafId::new("127.0.0.1", akaid::gba::UaProtocolId::HTTP_DIGEST)
                        .unwrap();
                let key = keys
                    .naf_key(&creds.username.parse().unwrap(), &naf_id)
                    .await
                    .unwrap();
                let password =
                    base64::engine::general_purpose::STANDARD.encode(key.ks_naf.expose());
                let ha1 = ha1(&creds.username, &creds.realm, password.as_bytes());
                if !creds.response_matches(&ha1, method.as_str(), &body) {
                    return (
                        StatusCode::FORBIDDEN,
                        [("x-naf", "bad digest".into())],
                        String::new(),
                    );
                }
                match creds.nonce.as_str() {
                    "n1" => unauthorized("n2", true),
                    _ => (
                        StatusCode::OK,
                        [("x-naf", "welcome".into())],
                        format!("{} {}", key.impi, String::from_utf8_lossy(&body)),
                    ),
                }
            }
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/form?x=1",
        listener.local_addr().unwrap().port()
    )
    .parse()
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_nonce_is_answered_again_without_a_new_bootstrap() {
    let (server, _) = signed_up(None).await;
    let (proxy, state, _dir) = proxy_with_usim_file(&server.bsf_url).await;
    let (naf, hits) = stale_naf(server.state.keys.clone()).await;
    let (http, _) = browser(Some(&proxy));
    let response = http
        .post(naf)
        .form(&[("field", "value kept")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    assert_eq!(response.headers()["x-naf"], "welcome");
    assert_eq!(
        response.text().await.unwrap(),
        format!("{IMPI} field=value+kept")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "challenge, stale, in");
    assert_eq!(used_slots(&state), 1, "stale needs no new bootstrap");
}

/// A site that answers every request with `401` and `challenge`, counting requests.
async fn challenging_site(challenge: &'static str) -> (Url, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::UNAUTHORIZED,
                [("www-authenticate", challenge)],
                "members only",
            )
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/private", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_that_is_not_gba_passes_through_untouched() {
    let (proxy, state, _dir) = proxy_with_usim_file(&server_less_bsf()).await;
    let (http, _) = browser(Some(&proxy));
    for challenge in [
        r#"Basic realm="intranet""#,
        r#"Digest realm="intranet@example.org", nonce="bm9uY2U", qop="auth", algorithm=MD5"#,
    ] {
        let (url, hits) = challenging_site(challenge).await;
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], challenge);
        assert_eq!(response.text().await.unwrap(), "members only");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "not resent: {challenge}");
    }
    assert!(
        !state.exists(),
        "no bootstrap for a challenge that is not GBA's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_refuses_every_gba_answer_gets_its_page_shown_without_the_challenge() {
    let (server, _) = signed_up(None).await;
    let (proxy, state, _dir) = proxy_with_usim_file(&server.bsf_url).await;
    let (site, hits) = challenging_site(
        r#"Digest realm="3GPP-bootstrapping@127.0.0.1", nonce="bm9uY2U", qop="auth-int,auth""#,
    )
    .await;
    let (http, _) = browser(Some(&proxy));
    let response = http.get(site).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // A desktop browser would ask for a password it cannot know.
    assert!(
        !response.headers().contains_key("www-authenticate"),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.text().await.unwrap(), "members only");
    // Answered once with a fresh bootstrap; no second bootstrap for a fresh B-TID.
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(used_slots(&state), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_gets_502_naming_it() {
    let proxy = bare_proxy().await;
    let (http, _) = browser(Some(&proxy));
    // Nothing listens there: straight from the client this is a connection error, so a 502
    // also shows that reqwest sends loopback traffic through the proxy.
    let target = format!("127.0.0.1:{}", crate::support::free_port());
    let response = http
        .get(format!("http://{target}/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains(&target), "{body}");
}

/// Sends `request` on a new connection to `proxy` and reads until the proxy closes it.
async fn raw_exchange(proxy: &Url, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy.socket_addrs(|| None).unwrap()[0])
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_stop_at_the_proxy_both_ways() {
    let proxy = bare_proxy().await;
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = upstream.local_addr().unwrap().port();
    let seen = tokio::spawn(async move {
        let (stream, _) = upstream.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        reader
            .get_mut()
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, X-Upstream-Hop\r\n\
                  X-Upstream-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
                  Proxy-Authenticate: Basic realm=\"p\"\r\nX-End-To-End: down\r\n\r\nhello",
            )
            .await
            .unwrap();
        head.to_ascii_lowercase()
    });
    let response = raw_exchange(
        &proxy,
        &format!(
            "GET http://127.0.0.1:{port}/echo?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             User-Agent: {DESKTOP_UA}\r\nConnection: close, X-Browser-Hop\r\nX-Browser-Hop: 1\r\n\
             Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\
             Keep-Alive: 300\r\nTE: trailers\r\nX-End-To-End: up\r\n\r\n"
        ),
    )
    .await;
    let head = seen.await.unwrap();
    assert!(head.starts_with("get /echo?q=1 http/1.1\r\n"), "{head}");
    for gone in [
        "x-browser-hop",
        "proxy-connection",
        "proxy-authorization",
        "keep-alive",
        "\r\nte:",
    ] {
        assert!(!head.contains(gone), "{gone} reached the site:\n{head}");
    }
    assert!(head.contains("x-end-to-end: up"), "{head}");
    assert!(
        head.contains(&format!(
            "user-agent: {} 3gpp-gba",
            DESKTOP_UA.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");

    let lower = response.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 ok\r\n"), "{response}");
    for gone in ["x-upstream-hop", "keep-alive", "proxy-authenticate"] {
        assert!(
            !lower.contains(gone),
            "{gone} reached the browser:\n{response}"
        );
    }
    assert!(lower.contains("x-end-to-end: down"), "{response}");
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_is_not_absolute_form_gets_400() {
    let proxy = bare_proxy().await;
    let response = raw_exchange(
        &proxy,
        "GET /authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.contains("absolute http:// URL"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnels_raw_bytes_both_ways() {
    let proxy = bare_proxy().await;
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = upstream.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let reply = format!("pong: {line}");
        reader.get_mut().write_all(reply.as_bytes()).await.unwrap();
    });
    let stream = TcpStream::connect(proxy.socket_addrs(|| None).unwrap()[0])
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut status = String::new();
    stream.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
    }
    // Bytes the proxy cannot parse as HTTP, as TLS would be.
    stream
        .get_mut()
        .write_all(b"\x16\x03\x01 ping\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    stream.read_until(b'\n', &mut reply).await.unwrap();
    assert_eq!(reply, b"pong: \x16\x03\x01 ping\n");

    let closed = format!("127.0.0.1:{}", crate::support::free_port());
    let response = raw_exchange(
        &proxy,
        &format!("CONNECT {closed} HTTP/1.1\r\nHost: {closed}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 502 "), "{response}");
    assert!(response.contains(&closed), "{response}");
}
