//! `akaid demo` in process: the demo site signs the demo subscriber in through both
//! protocols, driven by the software handset as the browser; a second sign-in needs no
//! consent; a denial lands on the site's cancelled state; the site's own pages and its
//! relying-party discovery document.

use akaid::demo::{self, Demo, DemoSettings};
use akaid::ue::browser::{Browser, Decision, Landing};

/// A demo on free ports of 127.0.0.1, in a temporary data directory.
pub struct RunningDemo {
    pub demo: Demo,
    _dir: tempfile::TempDir,
}

pub async fn start() -> RunningDemo {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo::start(DemoSettings {
        host: "127.0.0.1".parse().unwrap(),
        op_port: 0,
        bsf_port: 0,
        rp_port: 0,
        proxy_port: 0,
        config: akaid::config::Config::with_data_dir(&dir.path().join("data")),
    })
    .await
    .unwrap();
    RunningDemo { demo, _dir: dir }
}

fn browser(demo: &Demo) -> Browser {
    Browser::new(demo.bsf_url.clone(), Demo::handset().unwrap()).unwrap()
}

async fn sign_in(b: &mut Browser, demo: &Demo, path: &str, decision: Decision) -> Landing {
    let start = demo.site_url.join(path).unwrap();
    let landing = b.login(&start, decision).await.unwrap();
    assert_eq!(landing.status, 200, "{}", landing.body);
    assert_eq!(
        landing.url.as_str(),
        demo.site_url.as_str(),
        "every sign-in ends on the site's home page: {}",
        landing.body
    );
    landing
}

/// The identifier the signed-in page shows.
fn identity(body: &str) -> Option<String> {
    let start = body.find("<code id=\"identity\">")? + "<code id=\"identity\">".len();
    let end = body[start..].find("</code>")?;
    Some(body[start..start + end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_connect_deny_is_cancelled_then_allow_once_and_no_consent_the_second_time() {
    let running = start().await;
    let demo = &running.demo;
    let mut b = browser(demo);

    // No, first: the site shows a cancelled sign-in, and nothing is remembered.
    let denied = sign_in(&mut b, demo, "login/oidc", Decision::Deny).await;
    assert!(denied.authenticated, "the handset signed in with its SIM");
    assert!(denied.consented, "the first sign-in asks for consent");
    assert!(denied.body.contains("Sign-in cancelled"), "{}", denied.body);
    assert!(identity(&denied.body).is_none());

    let first = sign_in(&mut b, demo, "login/oidc", Decision::Allow).await;
    assert!(
        first.consented,
        "a denial is not remembered: consent is asked again"
    );
    assert!(first.body.contains("You are signed in"), "{}", first.body);
    assert!(first.body.contains("OpenID Connect"));
    let sub = identity(&first.body).expect("the page shows the subject");
    assert!(!sub.is_empty());
    // Claims released with consent, from the ID token and userinfo.
    assert!(first.body.contains(demo::MSISDN), "{}", first.body);
    assert!(first.body.contains("ID token payload (signature verified)"));
    assert!(first.body.contains("nonce"));

    // In again: the OP remembers the consent.
    let second = sign_in(&mut b, demo, "login/oidc", Decision::Allow).await;
    assert!(!second.consented, "a second sign-in skips consent");
    assert_eq!(identity(&second.body).as_deref(), Some(sub.as_str()));

    running.demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid2_deny_is_cancelled_then_allow_once_and_no_consent_the_second_time() {
    let running = start().await;
    let demo = &running.demo;
    let mut b = browser(demo);

    // No, first: the site shows a cancelled sign-in, and nothing is remembered.
    let denied = sign_in(&mut b, demo, "login/openid2", Decision::Deny).await;
    assert!(denied.authenticated, "the handset signed in with its SIM");
    assert!(denied.consented, "the first sign-in asks for consent");
    assert!(denied.body.contains("Sign-in cancelled"), "{}", denied.body);
    assert!(identity(&denied.body).is_none());

    let first = sign_in(&mut b, demo, "login/openid2", Decision::Allow).await;
    assert!(
        first.consented,
        "a denial is not remembered: consent is asked again"
    );
    assert!(first.body.contains("You are signed in"), "{}", first.body);
    assert!(first.body.contains("OpenID 2.0"));
    let claimed = identity(&first.body).expect("the page shows the claimed identifier");
    assert!(
        claimed.starts_with(&format!("{}id/", demo.op_url)),
        "{claimed}"
    );
    // SReg and AX values, signed and verified.
    assert!(
        first.body.contains("Nickname (nickname) by SReg"),
        "{}",
        first.body
    );
    assert!(first.body.contains("Dana Demo"));
    assert!(first.body.contains(demo::MSISDN));
    assert!(first.body.contains("is_valid:true"));

    let second = sign_in(&mut b, demo, "login/openid2", Decision::Allow).await;
    assert!(!second.consented, "a second sign-in skips consent");
    assert_eq!(identity(&second.body).as_deref(), Some(claimed.as_str()));

    running.demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_refuses_answers_it_did_not_ask_for_and_serves_its_xrds() {
    let running = start().await;
    let demo = &running.demo;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();

    // The home page: security headers, the XRDS location, no script.
    let home = http.get(demo.site_url.clone()).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let headers = home.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let xrds_url = headers["x-xrds-location"].to_str().unwrap().to_owned();
    let body = home.text().await.unwrap();
    assert!(!body.contains("<script"));
    assert!(body.contains("Sign in with your operator"));

    // The XRDS lists the return_to the OP's relying-party discovery checks.
    let xrds = http
        .get(&xrds_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        akaid::openid2::xrds::return_to_urls(&xrds).unwrap(),
        [format!("{}return/openid2", demo.site_url)]
    );

    // An answer with no sign-in behind it changes nothing and is not believed.
    for path in [
        "callback/oidc?code=forged&state=forged",
        "return/openid2?openid.ns=http://specs.openid.net/auth/2.0&openid.mode=id_res",
    ] {
        let response = http
            .get(demo.site_url.join(path).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains("belongs to no"), "{text}");
    }

    // A started OIDC sign-in whose answer carries another state fails, and the pending
    // request is gone (single use).
    let login = http
        .get(demo.site_url.join("login/oidc").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly; SameSite=Lax")
    );
    let to_op = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_op.starts_with(&format!("{}authorize?", demo.op_url)));
    assert!(to_op.contains("code_challenge_method=S256") && to_op.contains("nonce="));
    let forged = http
        .get(
            demo.site_url
                .join("callback/oidc?code=x&state=not-the-one")
                .unwrap(),
        )
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303);
    let home = http
        .get(demo.site_url.clone())
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Sign-in failed"), "{home}");
    assert!(home.contains("state"), "{home}");

    running.demo.shutdown().await.unwrap();
}

#[test]
fn the_demo_handset_is_the_demo_subscriber() {
    let handset = Demo::handset().unwrap();
    assert_eq!(handset.impi.as_str(), demo::IMPI);
    assert_eq!(demo::K, crate::support::K);
    assert_eq!(demo::OPC, crate::support::OPC);
}

/// The value of the hidden input `name` on a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} on {html}"))
        + format!("name=\"{name}\" value=\"").len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_client_signs_in_through_the_gba_proxy() {
    let running = start().await;
    let demo = &running.demo;
    // No GBA here: a client that knows nothing of SIMs, as a desktop browser.
    let http = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(demo.proxy_url.as_str()).unwrap())
        .cookie_store(true)
        .build()
        .unwrap();
    for (login, consent_path, protocol) in [
        ("login/oidc", "authorize/consent", "OpenID Connect"),
        ("login/openid2", "openid/consent", "OpenID 2.0"),
    ] {
        let consent = http
            .get(demo.site_url.join(login).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 200);
        assert!(consent.url().as_str().starts_with(demo.op_url.as_str()));
        let page = consent.text().await.unwrap();
        assert!(page.contains("value=\"allow\""), "{page}");
        let landing = http
            .post(demo.op_url.join(consent_path).unwrap())
            .form(&[
                ("csrf", hidden(&page, "csrf")),
                ("request", hidden(&page, "request")),
                ("decision", "allow".to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(landing.url(), &demo.site_url);
        let body = landing.text().await.unwrap();
        assert!(body.contains("You are signed in"), "{protocol}: {body}");
        assert!(body.contains(protocol));
        assert!(identity(&body).is_some());
    }
    running.demo.shutdown().await.unwrap();
}

/// `akaid demo` as a person runs it: it prints what to open (with the Chromium flags) and, on
/// SIGTERM, stops and removes the temporary data directory it printed.
#[cfg(unix)]
#[test]
fn the_demo_command_prints_what_to_open_and_removes_its_data_on_exit() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_akaid"))
        .args([
            "demo",
            "--op-port",
            "0",
            "--bsf-port",
            "0",
            "--rp-port",
            "0",
        ])
        .args(["--proxy-port", "0"])
        .current_dir(tmp.path())
        .env("TMPDIR", tmp.path())
        .env("AKAID_LOG", "warn")
        .env_remove("AKAID_MASTER_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let data_dir = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("data directory"))
        .map(|rest| {
            rest.trim()
                .trim_end_matches(" (removed on exit)")
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no data directory in {printed}"));
    assert!(
        data_dir.starts_with(tmp.path().to_str().unwrap()),
        "{printed}"
    );
    assert!(std::path::Path::new(&data_dir).join("akaid.db").exists());
    assert!(
        printed.contains(demo::IMPI) && printed.contains(demo::K),
        "{printed}"
    );
    let chromium = printed
        .lines()
        .find(|l| l.trim_start().starts_with("chromium "))
        .unwrap_or_else(|| panic!("no chromium line in {printed}"));
    assert!(
        chromium.contains("--proxy-server=http://127.0.0.1:"),
        "{chromium}"
    );
    assert!(chromium.contains("--proxy-bypass-list=\"<-loopback>\""));
    assert!(chromium.contains("--user-data-dir=$(mktemp -d) http://127.0.0.1:"));

    // The shell's own kill: no procps needed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "akaid demo exited with {exit}");
    assert!(
        !std::path::Path::new(&data_dir).exists(),
        "the temporary data directory is removed on exit"
    );
}
