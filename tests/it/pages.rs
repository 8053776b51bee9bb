//! The pages a person sees (issue 6): the security headers on every kind of HTML response,
//! no framing of the consent page, CSRF on the consent form, the language from
//! `Accept-Language`, and HSTS and `Secure` cookies only over HTTPS.

use std::collections::HashMap;

use akaid::oidc::client::{ClientRandom, Registration, register};
use akaid::store::RealmPolicy;
use akaid::ue::browser::{Browser, Decision};
use akaid::ue::ub::Handset;
use reqwest::header::HeaderMap;

use crate::support::{OpServer, op_server_with, subscriber};

const IMPI: &str = "pages@ims.example.org";
const REDIRECT: &str = "http://localhost:9/cb";
const NS: (&str, &str) = ("openid.ns", "http://specs.openid.net/auth/2.0");

async fn provisioned(configure: impl FnOnce(&mut akaid::config::Config)) -> OpServer {
    let server = op_server_with(None, |config| {
        config.openid2_rp_discovery = akaid::config::RpDiscovery::Off;
        configure(config);
    })
    .await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    server
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
    b.stop_before = Some("http://rp.example/".into());
    b
}

/// A client that follows no redirects, with a user agent that can do GBA.
fn gba() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("test 3gpp-gba")
        .build()
        .unwrap()
}

/// A desktop browser: no GBA token.
fn desktop() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0")
        .build()
        .unwrap()
}

fn checkid(server: &OpServer, realm: &str, return_to: &str) -> url::Url {
    let mut url = server.op_url.join("openid").unwrap();
    url.query_pairs_mut()
        .append_pair(NS.0, NS.1)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.claimed_id", akaid::openid2::IDENTIFIER_SELECT)
        .append_pair("openid.identity", akaid::openid2::IDENTIFIER_SELECT)
        .append_pair("openid.realm", realm)
        .append_pair("openid.return_to", return_to);
    url
}

async fn oidc_client(server: &OpServer) -> String {
    let now = akaid::clock::Clock::now(&*server.ctx.clock);
    let new = register(
        &Registration {
            name: "Pages Test RP",
            redirect_uris: &[REDIRECT.to_owned()],
            post_logout_redirect_uris: &[],
            public: false,
            id_token_alg: None,
            subject_type: None,
            sector_host: None,
        },
        &ClientRandom::draw(),
        now,
    )
    .unwrap();
    server.ctx.store.clients.add(&new.client).await.unwrap();
    new.client.client_id.as_str().to_owned()
}

fn authorize_url(server: &OpServer, client_id: &str, redirect_uri: &str) -> url::Url {
    let mut url = server.op_url.join("authorize").unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("nonce", "n");
    url
}

/// A response, read whole.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn read(response: reqwest::Response) -> Page {
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The value of a hidden field of the page's first form.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("{name}: {}", self.body))
            + marker.len();
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }

    /// The session cookie this response sets, as `name=value`, with its attributes.
    fn session_cookie(&self) -> Option<(String, Vec<String>)> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with("akaid_session="))
            .map(|c| {
                let mut parts = c.split(';').map(|p| p.trim().to_owned());
                let pair = parts.next().unwrap();
                (pair, parts.map(|a| a.to_ascii_lowercase()).collect())
            })
    }
}

/// Signs the browser in (through `/account`) and returns its session cookie.
async fn signed_in(server: &OpServer, b: &mut Browser) -> String {
    let account = server.op_url.join("account").unwrap();
    let page = b.login(&account, Decision::Allow).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    b.cookies(&server.op_url).unwrap()
}

async fn get_with(
    client: &reqwest::Client,
    url: &url::Url,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Page {
    let mut request = client.get(url.clone());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

async fn post_with(
    client: &reqwest::Client,
    url: &url::Url,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Page {
    let mut request = client.post(url.clone()).form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    read(request.send().await.unwrap()).await
}

fn assert_secure_page(what: &str, page: &Page) {
    let csp = page.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{what}: {csp}"
    );
    assert_eq!(page.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(page.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(page.header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(page.header("cache-control"), "no-store", "{what}");
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{what}"
    );
    assert_eq!(page.header("content-language"), "en", "{what}");
    assert!(page.header("vary").contains("Accept-Language"), "{what}");
    assert!(
        page.body.starts_with("<!doctype html>\n<html lang=\"en\">"),
        "{what}: {}",
        page.body
    );
    for landmark in ["<header", "<main", "<footer", "<h1>"] {
        assert!(page.body.contains(landmark), "{what}: no {landmark}");
    }
    assert!(
        page.header("strict-transport-security").is_empty(),
        "{what}: HSTS over HTTP"
    );
}

/// Every kind of HTML page the OP serves, each from the request that produces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_html_response_carries_the_security_headers() {
    let server = provisioned(|_| {}).await;
    let client_id = oidc_client(&server).await;
    let mut out = Vec::new();
    akaid::cli::realm_set(
        &server.ctx,
        "http://blocked.example/",
        RealmPolicy::Deny,
        false,
        &mut out,
    )
    .await
    .unwrap();
    akaid::cli::realm_set(
        &server.ctx,
        "http://big.example/",
        RealmPolicy::Allow,
        false,
        &mut out,
    )
    .await
    .unwrap();
    let mut b = browser(&server);
    let cookie = signed_in(&server, &mut b).await;
    let cookie = Some(cookie.as_str());
    let op = |path: &str| server.op_url.join(path).unwrap();
    let mut pages: Vec<(&str, u16, Page)> = Vec::new();

    let consent = get_with(
        &gba(),
        &checkid(&server, "http://rp.example/", "http://rp.example/r"),
        cookie,
        &[],
    )
    .await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    // The consent form answered once, then replayed: the request is used up.
    let answer = [
        ("csrf", consent.field("csrf")),
        ("request", consent.field("request")),
        ("decision", "deny".to_owned()),
    ];
    let answer: Vec<(&str, &str)> = answer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = post_with(&gba(), &op("openid/consent"), cookie, &answer).await;
    assert_eq!(first.status, 303, "{}", first.body);
    pages.push(("consent", 200, consent));
    pages.push((
        "consent replayed",
        403,
        post_with(&gba(), &op("openid/consent"), cookie, &answer).await,
    ));
    let checkid_url = checkid(&server, "http://rp.example/", "http://rp.example/r");
    pages.push((
        "ua 401",
        401,
        get_with(&gba(), &checkid_url, None, &[]).await,
    ));
    pages.push((
        "sim needed",
        200,
        get_with(&desktop(), &checkid_url, None, &[]).await,
    ));
    pages.push((
        "account",
        200,
        get_with(&gba(), &op("account"), cookie, &[]).await,
    ));
    pages.push((
        "account needs the SIM",
        200,
        get_with(&desktop(), &op("account"), None, &[]).await,
    ));
    pages.push((
        "revoke refused",
        403,
        post_with(
            &gba(),
            &op("account/revoke"),
            cookie,
            &[("csrf", "guess"), ("relying_party", "x")],
        )
        .await,
    ));
    pages.push((
        "logout confirm",
        200,
        get_with(&gba(), &op("logout"), cookie, &[]).await,
    ));
    pages.push((
        "logout refused",
        400,
        get_with(&gba(), &op("logout?id_token_hint=not.a.token"), None, &[]).await,
    ));
    pages.push((
        "signed out",
        200,
        get_with(&gba(), &op("logout"), None, &[]).await,
    ));
    let long_return = format!("http://big.example/r?pad={}", "x".repeat(2100));
    pages.push((
        "self-post form",
        200,
        get_with(
            &gba(),
            &checkid(&server, "http://big.example/", &long_return),
            cookie,
            &[],
        )
        .await,
    ));
    pages.push((
        "blocked site",
        403,
        get_with(
            &gba(),
            &checkid(
                &server,
                "http://blocked.example/",
                "http://blocked.example/r",
            ),
            cookie,
            &[],
        )
        .await,
    ));
    pages.push((
        "unknown site",
        400,
        get_with(
            &gba(),
            &authorize_url(&server, "no-such-client", REDIRECT),
            cookie,
            &[],
        )
        .await,
    ));
    pages.push((
        "unregistered redirect",
        400,
        get_with(
            &gba(),
            &authorize_url(&server, &client_id, "http://evil.example/cb"),
            cookie,
            &[],
        )
        .await,
    ));
    pages.push((
        "bad request",
        400,
        get_with(
            &gba(),
            &op("openid?openid.ns=http://specs.openid.net/auth/2.0&openid.mode=bogus"),
            None,
            &[],
        )
        .await,
    ));
    pages.push((
        "not answered",
        403,
        post_with(
            &gba(),
            &op("authorize/consent"),
            None,
            &[("decision", "allow")],
        )
        .await,
    ));
    pages.push((
        "no such identifier",
        404,
        get_with(&gba(), &op("id/NOT-A-PSEUDONYM"), None, &[]).await,
    ));
    pages.push((
        "op identifier",
        200,
        get_with(&gba(), &op(""), None, &[]).await,
    ));

    for (what, status, page) in &pages {
        assert_eq!(page.status, *status, "{what}: {}", page.body);
        assert_secure_page(what, page);
    }
    let body = |what: &str| &pages.iter().find(|(w, _, _)| *w == what).unwrap().2.body;
    assert!(body("self-post form").contains("id=\"openid-return\""));
    assert!(body("blocked site").contains("blocked.example"));
    assert!(body("unknown site").contains("not registered"));
    assert!(body("ua 401").contains("GBA"));
    assert!(body("sim needed").contains("rp.example"));
    let en = akaid::web::i18n::EN;
    assert!(body("account needs the SIM").contains(en.sim_intro_account));
    assert!(body("account").contains(en.account_empty));
    // Never internals: a protocol detail is labelled for developers; no Rust error shapes.
    for (what, _, page) in &pages {
        assert!(
            !page.body.contains("Error {") && !page.body.contains("panicked"),
            "{what}"
        );
    }
}

/// The consent page cannot be put in a frame (clickjacking of Allow), and its CSP lets the
/// form's answer redirect only to the relying party's origin besides our own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_cannot_be_framed() {
    let server = provisioned(|_| {}).await;
    let mut b = browser(&server);
    let cookie = signed_in(&server, &mut b).await;
    let page = get_with(
        &gba(),
        &checkid(&server, "http://rp.example/", "http://rp.example/r"),
        Some(&cookie),
        &[],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"decision\""));
    let csp = page.header("content-security-policy");
    let directives: HashMap<&str, &str> = csp
        .split(';')
        .filter_map(|d| d.trim().split_once(' '))
        .collect();
    assert_eq!(directives["frame-ancestors"], "'none'");
    assert_eq!(directives["form-action"], "'self' http://rp.example");
    assert_eq!(page.header("x-frame-options"), "DENY");
}

/// A consent answer without the token, or with another session's, is refused with a page and
/// stores nothing; the same answer with the right session is accepted (so the refusals are
/// the token's doing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_answers_need_their_own_sessions_token() {
    let server = provisioned(|_| {}).await;
    let impi = IMPI.parse().unwrap();
    let consents = || server.ctx.store.consents.list(&impi);
    let (mut a, mut b) = (browser(&server), browser(&server));
    let cookie_a = signed_in(&server, &mut a).await;
    let cookie_b = signed_in(&server, &mut b).await;
    assert_ne!(cookie_a, cookie_b);
    let url = checkid(&server, "http://rp.example/", "http://rp.example/r");
    let page_a = get_with(&gba(), &url, Some(&cookie_a), &[]).await;
    let page_b = get_with(&gba(), &url, Some(&cookie_b), &[]).await;
    let consent = server.op_url.join("openid/consent").unwrap();
    let (csrf_a, request_a) = (page_a.field("csrf"), page_a.field("request"));
    let request_b = page_b.field("request");

    // No token at all (the field is missing, not empty).
    let r = post_with(
        &gba(),
        &consent,
        Some(&cookie_b),
        &[("request", &request_b), ("decision", "allow")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("This answer cannot be used"), "{}", r.body);
    assert_secure_page("no token", &r);
    // A's token and request, posted in B's session.
    let r = post_with(
        &gba(),
        &consent,
        Some(&cookie_b),
        &[
            ("csrf", &csrf_a),
            ("request", &request_a),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A's token with B's request.
    let r = post_with(
        &gba(),
        &consent,
        Some(&cookie_b),
        &[
            ("csrf", &csrf_a),
            ("request", &request_b),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        consents().await.unwrap().is_empty(),
        "a refused answer stored a consent"
    );

    // The OpenID Connect consent form refuses a missing token the same way.
    let r = post_with(
        &gba(),
        &server.op_url.join("authorize/consent").unwrap(),
        Some(&cookie_b),
        &[("decision", "allow")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(consents().await.unwrap().is_empty());

    // B's pending request survived the forgeries; A's own answer goes through.
    let r = post_with(
        &gba(),
        &consent,
        Some(&cookie_a),
        &[
            ("csrf", &csrf_a),
            ("request", &request_a),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(consents().await.unwrap().len(), 1);
}

/// `Accept-Language` picks the pages' language, `<html lang>` and `Content-Language` say
/// which, and an unknown language gets English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_language_picks_the_language() {
    let server = provisioned(|_| {}).await;
    let mut b = browser(&server);
    let cookie = signed_in(&server, &mut b).await;
    let url = checkid(&server, "http://rp.example/", "http://rp.example/r");
    let de = akaid::web::i18n::DE;
    let en = akaid::web::i18n::EN;
    for (accept, lang, allow) in [
        ("de", "de", de.consent_allow),
        ("de-AT", "de", de.consent_allow),
        ("fr;q=0.1, de;q=0.9", "de", de.consent_allow),
        ("de;q=0.1, fr;q=0.9, en;q=0.5", "en", en.consent_allow),
        ("fr", "en", en.consent_allow),
        ("", "en", en.consent_allow),
    ] {
        let page = get_with(&gba(), &url, Some(&cookie), &[("accept-language", accept)]).await;
        assert_eq!(page.status, 200, "{accept}: {}", page.body);
        assert_eq!(page.header("content-language"), lang, "{accept}");
        assert!(page.header("vary").contains("Accept-Language"));
        assert!(
            page.body.contains(&format!("<html lang=\"{lang}\">")),
            "{accept}"
        );
        assert!(
            page.body.contains(&format!(">{allow}</button>")),
            "{accept}: {}",
            page.body
        );
        // The form still works whatever the language: the values are not translated.
        assert!(page.body.contains("value=\"allow\"") && page.body.contains("value=\"deny\""));
    }
    // Error pages, the 401 page (its challenge intact) and consent items too.
    let page = get_with(
        &gba(),
        &server.op_url.join("id/NOT-A-PSEUDONYM").unwrap(),
        None,
        &[("accept-language", "de")],
    )
    .await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains(de.no_such_identifier_title),
        "{}",
        page.body
    );
    assert_eq!(page.header("content-language"), "de");
    assert_secure_headers_only(&page);
    let page = get_with(
        &gba(),
        &url,
        None,
        &[("accept-language", "de-DE,de;q=0.9,en;q=0.8")],
    )
    .await;
    assert_eq!(page.status, 401);
    assert!(
        page.header("www-authenticate").starts_with("Digest "),
        "{:?}",
        page.headers
    );
    assert!(page.body.contains(de.ua_title));
    let page = get_with(&gba(), &url, Some(&cookie), &[("accept-language", "de")]).await;
    assert!(page.body.contains(de.item_identifier), "{}", page.body);
    // A site's protocol answers are not translated: Deny still sends openid.mode=cancel.
    let answer = [
        ("csrf", page.field("csrf")),
        ("request", page.field("request")),
        ("decision", "deny".to_owned()),
    ];
    let answer: Vec<(&str, &str)> = answer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = gba()
        .post(server.op_url.join("openid/consent").unwrap())
        .header("cookie", cookie.as_str())
        .header("accept-language", "de")
        .form(&answer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("openid.mode=cancel")
    );
}

fn assert_secure_headers_only(page: &Page) {
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
}

/// HSTS and the cookie's `Secure` flag only when the request came over HTTPS: a trusted proxy
/// that says so in `X-Forwarded-Proto`, or an `https://` public URL; never over plain HTTP,
/// and never on the word of a peer that is not a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_and_secure_cookies_only_over_https() {
    let https = [("x-forwarded-proto", "https")];
    for trusted in [true, false] {
        let server = provisioned(|config| {
            if trusted {
                config.trusted_proxies = "127.0.0.0/8".parse().unwrap();
            }
        })
        .await;
        let mut b = browser(&server);
        let cookie = signed_in(&server, &mut b).await;
        for (forwarded, realm) in [
            (false, "http://one.example/"),
            (true, "http://two.example/"),
        ] {
            let headers: &[(&str, &str)] = if forwarded { &https } else { &[] };
            let url = checkid(&server, realm, &format!("{realm}r"));
            // The consent page keeps the pending request in the session: it sets the cookie.
            let page = get_with(&gba(), &url, Some(&cookie), headers).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let over_https = trusted && forwarded;
            let hsts = page.header("strict-transport-security");
            assert_eq!(
                !hsts.is_empty(),
                over_https,
                "trusted {trusted}, forwarded {forwarded}"
            );
            if over_https {
                assert!(
                    hsts.starts_with("max-age=")
                        && hsts["max-age=".len()..].parse::<u64>().unwrap() >= 31_536_000
                );
            }
            let (_, attributes) = page.session_cookie().expect("the session cookie is set");
            assert!(
                attributes.contains(&"httponly".to_owned()),
                "{attributes:?}"
            );
            assert!(
                attributes.contains(&"samesite=lax".to_owned()),
                "{attributes:?}"
            );
            assert_eq!(
                attributes.contains(&"secure".to_owned()),
                over_https,
                "{attributes:?}"
            );
            // Non-HTML responses over HTTPS get HSTS too; the stylesheet is one.
            let css = get_with(
                &gba(),
                &server
                    .op_url
                    .join(akaid::web::pages::css_path().trim_start_matches('/'))
                    .unwrap(),
                None,
                headers,
            )
            .await;
            assert_eq!(css.status, 200);
            assert_eq!(
                !css.header("strict-transport-security").is_empty(),
                over_https
            );
        }
    }
    // An https:// public URL (TLS terminated in front of us, no proxy header needed).
    let server = provisioned(|config| {
        let port = config.public_url.port().unwrap();
        config.public_url = format!("https://127.0.0.1:{port}/").parse().unwrap();
    })
    .await;
    let plain = url::Url::parse(&format!(
        "http://127.0.0.1:{}/account",
        server.op_url.port().unwrap()
    ))
    .unwrap();
    let page = get_with(&desktop(), &plain, None, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.header("strict-transport-security").is_empty());
}

/// The stylesheet is served under a content-hashed name for a year, under its plain name for
/// a day, and the pages link the hashed one; it needs nothing from other origins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stylesheet_is_cacheable_and_self_contained() {
    let server = provisioned(|_| {}).await;
    let page = get_with(
        &desktop(),
        &server.op_url.join("account").unwrap(),
        None,
        &[],
    )
    .await;
    let path = akaid::web::pages::css_path();
    assert!(
        page.body.contains(&format!("href=\"{path}\"")),
        "{}",
        page.body
    );
    let css = get_with(
        &desktop(),
        &server.op_url.join(path.trim_start_matches('/')).unwrap(),
        None,
        &[],
    )
    .await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.header("cache-control").contains("max-age=31536000"));
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert!(
        !css.body.contains("@import") && !css.body.contains("url("),
        "no external resources"
    );
    let plain = get_with(
        &desktop(),
        &server.op_url.join("static/akaid.css").unwrap(),
        None,
        &[],
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("cache-control"), "public, max-age=86400");
    let missing = get_with(
        &desktop(),
        &server.op_url.join("static/other.css").unwrap(),
        None,
        &[],
    )
    .await;
    assert_eq!(missing.status, 404);
}
