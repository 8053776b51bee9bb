//! A real browser end to end: headless Debian Chromium, driven over WebDriver (chromedriver)
//! by `fantoccini`, signs in to the demo site through the GBA proxy (`akaid ue proxy`), which
//! plays the demo subscriber's SIM. Both protocols: consent once, a second sign-in without
//! it, revoking on the account page brings it back, Deny lands on the site's cancelled
//! state. Every page is checked at 320 px wide for horizontal scrolling.
//!
//! Skipped (with a `skipped:` line) when chromedriver is not installed, unless
//! `AKAID_REQUIRE_BROWSER=1` (as `.ci/run` sets it). With `AKAID_SCREENSHOTS=DIR` the consent,
//! signed-in and account pages are saved there as PNGs at phone size (the README's
//! `docs/screenshots/`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::demo::start;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// A phone's viewport (CSS pixels).
const PHONE: (u32, u32) = (360, 740);
/// The narrowest width every page must fit without scrolling sideways.
const NARROW: u32 = 320;

/// chromedriver on a free port of its own, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.exists().then_some(path)
}

/// chromedriver and chromium, or `None` (the test is skipped) unless the browser is required.
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let found =
        program("AKAID_CHROMEDRIVER", CHROMEDRIVER).zip(program("AKAID_CHROMIUM", CHROMIUM));
    if found.is_none() {
        assert!(
            std::env::var("AKAID_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AKAID_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: chromium and chromium-driver are not installed");
    }
    found
}

async fn start_driver(chromedriver: &PathBuf) -> Driver {
    let port = crate::support::free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .ok()
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn chromium(
    driver: &Driver,
    chromium: &PathBuf,
    proxy: &url::Url,
    profile: &std::path::Path,
) -> Client {
    let proxy = proxy.as_str().trim_end_matches('/');
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={},{}", PHONE.0, PHONE.1),
                format!("--proxy-server={proxy}"),
                "--proxy-bypass-list=<-loopback>",
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver refused a session: {e}"))
}

/// The page in the window, its width checked at 320 px, and optionally saved as `name`.png.
#[derive(Clone)]
struct Pages {
    client: Client,
    screenshots: Option<PathBuf>,
}

impl Pages {
    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// No horizontal scrolling at 320 px (the page is laid out again at that width).
    async fn fits_narrow(&self, what: &str) {
        self.client.set_window_size(NARROW, PHONE.1).await.unwrap();
        let widths = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        self.client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
        let scroll = widths[0].as_u64().unwrap();
        let inner = widths[1].as_u64().unwrap();
        assert!(
            inner <= u64::from(NARROW) && scroll <= inner,
            "{what} scrolls sideways at {NARROW} px: scrollWidth {scroll} > innerWidth {inner}"
        );
    }

    async fn screenshot(&self, name: &str) {
        if let Some(dir) = &self.screenshots {
            let png = self.client.screenshot().await.unwrap();
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    async fn click(&self, css: &str) {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.click().await.unwrap(),
            Err(e) => panic!("no {css} on the page ({e}): {}", self.text_now().await),
        }
    }

    async fn text_now(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page (after a click's navigations) shows `css`.
    async fn wait_for(&self, css: &str) {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        if let Err(e) = found {
            panic!(
                "{css} did not appear ({e}) on {}: {}",
                self.url().await,
                self.text_now().await
            );
        }
    }

    async fn identity(&self) -> String {
        match self.client.find(Locator::Id("identity")).await {
            Ok(element) => element.text().await.unwrap(),
            Err(_) => panic!("not signed in: {}", self.text_now().await),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_gba_proxy_with_both_protocols() {
    let Some((chromedriver, chromium_bin)) = browser_programs() else {
        return;
    };
    let started = Instant::now();
    let running = start().await;
    let demo = &running.demo;
    let proxy = demo.proxy_url.clone();
    let driver = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let client = chromium(&driver, &chromium_bin, &proxy, profile.path()).await;
    let pages = Pages {
        client,
        screenshots: std::env::var_os("AKAID_SCREENSHOTS").map(PathBuf::from),
    };
    let site = demo.site_url.clone();
    let op = demo.op_url.clone();

    // The scenario runs in a task of its own so that the browser is closed whatever happens.
    let scenario_pages = pages.clone();
    let outcome = tokio::spawn(async move {
        let pages = scenario_pages;
        // The site, as a phone shows it.
        pages.client.goto(site.as_str()).await.unwrap();
        assert!(pages.text().await.contains("Sign in with your operator"));
        pages.fits_narrow("the demo home page").await;
        pages.screenshot("demo-home").await;

        // OpenID Connect: the SIM signs in through the proxy, then the consent page.
        pages.click("a[href='/login/oidc']").await;
        pages.wait_for("button[value='allow']").await;
        assert!(pages.url().await.as_str().starts_with(op.as_str()));
        let consent = pages.text().await;
        assert!(
            consent.contains("Allow") && consent.contains("Deny"),
            "{consent}"
        );
        assert!(consent.contains(CLIENT_HOST), "{consent}");
        pages.fits_narrow("the consent page").await;
        pages.screenshot("consent").await;
        pages.click("button[value='allow']").await;
        pages.wait_for("#identity").await;
        assert_eq!(without_query(pages.url().await), site);
        let sub = pages.identity().await;
        let signed_in = pages.text().await;
        assert!(signed_in.contains("OpenID Connect"), "{signed_in}");
        assert!(signed_in.contains(akaid::demo::MSISDN), "{signed_in}");
        pages.fits_narrow("the signed-in page").await;
        pages.screenshot("signed-in").await;

        // Sign out (here and at the OP), then in again: no consent page this time.
        pages.click("form[action='/logout'] button").await;
        pages.wait_for("a[href='/login/oidc']").await;
        assert_eq!(without_query(pages.url().await), site);
        pages.click("a[href='/login/oidc']").await;
        pages.wait_for("#identity").await;
        assert_eq!(
            without_query(pages.url().await),
            site,
            "a second sign-in skips consent"
        );
        assert_eq!(pages.identity().await, sub);
        pages.click("form[action='/logout'] button").await;
        pages.wait_for("a[href='/login/openid2']").await;

        // OpenID 2.0 the same way.
        pages.click("a[href='/login/openid2']").await;
        pages.wait_for("button[value='allow']").await;
        assert!(pages.url().await.as_str().starts_with(op.as_str()));
        pages.fits_narrow("the OpenID 2.0 consent page").await;
        pages.click("button[value='allow']").await;
        pages.wait_for("#identity").await;
        assert_eq!(without_query(pages.url().await), site);
        let claimed = pages.identity().await;
        assert!(claimed.starts_with(&format!("{op}id/")), "{claimed}");
        pages.click("form[action='/logout'] button").await;
        pages.wait_for("a[href='/login/openid2']").await;
        pages.click("a[href='/login/openid2']").await;
        pages.wait_for("#identity").await;
        assert_eq!(
            without_query(pages.url().await),
            site,
            "a second sign-in skips consent"
        );
        assert_eq!(pages.identity().await, claimed);
        pages.click("form[action='/logout'] button").await;
        pages.wait_for("a[href='/login/openid2']").await;

        // The account page lists the site under both protocols; revoking brings consent back.
        pages
            .client
            .goto(op.join("account").unwrap().as_str())
            .await
            .unwrap();
        pages.wait_for("form[action='/account/revoke']").await;
        let account = pages.text().await;
        assert!(account.contains(CLIENT_HOST), "{account}");
        pages.fits_narrow("the account page").await;
        pages.screenshot("account").await;
        let revoke = Locator::Css("form[action='/account/revoke'] button");
        let mut left = pages.client.find_all(revoke).await.unwrap().len();
        assert_eq!(left, 2, "the site is listed once per protocol");
        while left > 0 {
            pages.click("form[action='/account/revoke'] button").await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let now_left = pages.client.find_all(revoke).await.unwrap().len();
                if now_left < left {
                    left = now_left;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "revoking did not remove the site"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(pages.text().await.contains("not allowed any site"));

        // Deny: the site's cancelled state, for each protocol.
        for login in ["/login/oidc", "/login/openid2"] {
            pages.client.goto(site.as_str()).await.unwrap();
            pages.click(&format!("a[href='{login}']")).await;
            pages.wait_for("button[value='deny']").await;
            assert!(
                pages.url().await.as_str().starts_with(op.as_str()),
                "revoking brought the consent page back"
            );
            pages.click("button[value='deny']").await;
            pages.wait_for(".notice.cancelled").await;
            assert_eq!(without_query(pages.url().await), site);
            let cancelled = pages.text().await;
            assert!(
                cancelled.contains("Sign-in cancelled"),
                "{login}: {cancelled}"
            );
            pages.fits_narrow("the cancelled page").await;
        }
    })
    .await;
    let _ = pages.client.clone().close().await;
    drop(driver);
    running.demo.shutdown().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// The URL without its query (the OP's logout redirect may leave an empty `?`).
fn without_query(mut url: url::Url) -> url::Url {
    url.set_query(None);
    url
}

/// How the consent and account pages name the demo site: its host.
const CLIENT_HOST: &str = "127.0.0.1";
