//! `akaid ue bench`: a load generator for Ub. Handsets derive their keys from the seed that
//! `akaid subscriber generate` used, so no key file is needed; each worker bootstraps one
//! handset after another for the given duration, and the report gives completed bootstraps
//! per second with p50/p99 latency.

use axum::http::HeaderValue;

use super::raw_http::RawConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::Url;

use super::ub::{Handset, UbClient, UeError};
use crate::aka::{SubscriberKeys, UsimState};
use crate::hss::generate::seeded;

#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub bsf: Url,
    pub seed: String,
    pub subscribers: u64,
    pub concurrency: usize,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// What was counted: "bootstraps", "logins" or "code flows".
    pub what: &'static str,
    pub completed: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub first_error: Option<String>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} completed, {} failed in {:.1} s",
            self.what,
            self.completed,
            self.failed,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "rate:       {:.0} {}/s", self.per_second, self.what)?;
        writeln!(
            f,
            "latency:    p50 {:.2} ms, p99 {:.2} ms",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )?;
        if let Some(e) = &self.first_error {
            writeln!(f, "first error: {e}")?;
        }
        Ok(())
    }
}

pub(crate) fn handset(seed: &str, index: u64) -> Result<Handset, UeError> {
    let sub = seeded(seed, index);
    Ok(Handset {
        impi: sub
            .impi
            .parse()
            .map_err(|e: crate::ids::InvalidId| UeError::Protocol(e.to_string()))?,
        keys: SubscriberKeys {
            k: sub.k,
            opc: sub.opc,
        },
        usim: UsimState::default(),
    })
}

/// Failed operations and the first error, shared by the workers.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    count: AtomicU64,
    first: std::sync::Mutex<Option<String>>,
}

impl Failures {
    pub(crate) fn record(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(error);
    }
}

/// Waits for the workers (each returns its latencies) and makes the report.
pub(crate) async fn report(
    what: &'static str,
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
    failures: &Failures,
) -> Result<BenchReport, UeError> {
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.map_err(|e| UeError::Http(e.to_string()))?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let completed = latencies.len() as u64;
    let first_error = failures
        .first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(BenchReport {
        what,
        completed,
        failed: failures.count.load(Ordering::Relaxed),
        elapsed,
        per_second: completed as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        first_error,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(settings: BenchSettings) -> Result<BenchReport, UeError> {
    let client = UbClient::new()?;
    let handsets: Arc<Vec<Mutex<Handset>>> = Arc::new(
        (0..settings.subscribers.max(1))
            .map(|i| handset(&settings.seed, i).map(Mutex::new))
            .collect::<Result<_, _>>()?,
    );
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Failures::default());
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut workers = Vec::new();
    for _ in 0..settings.concurrency.max(1) {
        let (client, handsets, next, failures, bsf) = (
            client.clone(),
            handsets.clone(),
            next.clone(),
            failures.clone(),
            settings.bsf.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) % handsets.len() as u64;
                let Ok(mut handset) = handsets[i as usize].try_lock() else {
                    continue;
                };
                let t = Instant::now();
                match client.bootstrap(&bsf, &mut handset).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => failures.record(e.to_string()),
                }
            }
            latencies
        }));
    }
    report("bootstraps", started, workers, &failures).await
}

/// Settings of the login mode.
#[derive(Debug, Clone)]
pub struct LoginBenchSettings {
    /// The OP endpoint (`…/openid`).
    pub endpoint: Url,
    pub bsf: Url,
    pub seed: String,
    /// Signed-in handsets (each worker uses one; they share them round robin).
    pub subscribers: u64,
    pub concurrency: usize,
    pub duration: Duration,
}

/// The relying party the benchmark logs in to: nothing listens there, the answer is read
/// from the redirect.
const BENCH_REALM: &str = "http://127.0.0.1:9/";
const BENCH_RETURN_TO: &str = "http://127.0.0.1:9/return";

fn checkid_url(endpoint: &Url) -> Url {
    let select = crate::openid2::IDENTIFIER_SELECT;
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("openid.ns", crate::openid2::OPENID2_NS)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.claimed_id", select)
        .append_pair("openid.identity", select)
        .append_pair("openid.realm", BENCH_REALM)
        .append_pair("openid.return_to", BENCH_RETURN_TO);
    url
}

/// One full stateless OpenID 2.0 login as a relying party sees it: the checkid_setup
/// redirect (the handset already signed in and consented), then check_authentication.
async fn one_login(
    http: &reqwest::Client,
    endpoint: &Url,
    checkid: &Url,
    cookie: Option<&str>,
) -> Result<(), String> {
    let mut request = http.get(checkid.clone());
    if let Some(c) = cookie {
        request = request.header(reqwest::header::COOKIE, c);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            format!(
                "checkid_setup answered {} without a redirect",
                response.status()
            )
        })?
        .to_owned();
    let answer = Url::parse(&location).map_err(|e| e.to_string())?;
    let mut fields: Vec<(String, String)> = answer
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k.starts_with("openid."))
        .collect();
    let mode = fields.iter_mut().find(|(k, _)| k == "openid.mode");
    match mode {
        Some((_, v)) if v == "id_res" => *v = "check_authentication".into(),
        _ => return Err(format!("not an id_res: {location}")),
    }
    let text = http
        .post(endpoint.clone())
        .form(&fields)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if text.lines().any(|l| l == "is_valid:true") {
        Ok(())
    } else {
        Err(format!("check_authentication: {text}"))
    }
}

/// [`one_login`] over a [`RawConnection`]: the `id_res` query goes back as the
/// `check_authentication` body as it came (both are form-encoded), with only its mode changed.
async fn one_raw_login(
    connection: &mut RawConnection,
    endpoint_path: &str,
    checkid_target: &str,
    cookie: Option<&HeaderValue>,
) -> Result<(), String> {
    let mut request = axum::http::Request::get(checkid_target);
    if let Some(c) = cookie {
        request = request.header(axum::http::header::COOKIE, c.clone());
    }
    let (parts, _) = connection.send(request, axum::body::Bytes::new()).await?;
    let location = parts
        .headers
        .get(axum::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("checkid_setup answered {} without a redirect", parts.status))?;
    let query = location
        .split_once('?')
        .map(|(_, q)| q)
        .ok_or_else(|| format!("not an id_res: {location}"))?;
    let mut form = String::with_capacity(query.len() + 16);
    let mut id_res = false;
    for pair in query.split('&') {
        if !pair.starts_with("openid.") {
            continue;
        }
        if !form.is_empty() {
            form.push('&');
        }
        if pair == "openid.mode=id_res" {
            form.push_str("openid.mode=check_authentication");
            id_res = true;
        } else {
            form.push_str(pair);
        }
    }
    if !id_res {
        return Err(format!("not an id_res: {location}"));
    }
    let request = axum::http::Request::post(endpoint_path).header(
        axum::http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    let (_, body) = connection
        .send(request, axum::body::Bytes::from(form))
        .await?;
    if body.split(|b| *b == b'\n').any(|l| l == b"is_valid:true") {
        Ok(())
    } else {
        Err(format!(
            "check_authentication: {}",
            String::from_utf8_lossy(&body)
        ))
    }
}

/// `akaid ue bench --login`: full OpenID 2.0 logins per second.
pub async fn run_logins(settings: LoginBenchSettings) -> Result<BenchReport, UeError> {
    let checkid = checkid_url(&settings.endpoint);
    // Sign each handset in once (bootstrap, Ua, consent); keep its session cookie.
    let mut cookies = Vec::new();
    for i in 0..settings.subscribers.max(1) {
        let mut browser =
            super::browser::Browser::new(settings.bsf.clone(), handset(&settings.seed, i)?)?;
        browser.stop_before = Some(BENCH_REALM.to_owned());
        browser
            .login(&checkid, super::browser::Decision::Allow)
            .await?;
        cookies.push(browser.cookies(&settings.endpoint));
    }
    let cookies = Arc::new(cookies);
    let http = reqwest::Client::builder()
        .user_agent(super::USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(settings.concurrency.max(1))
        .build()
        .map_err(|e| UeError::Http(e.to_string()))?;
    let failures = Arc::new(Failures::default());
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut workers = Vec::new();
    for w in 0..settings.concurrency.max(1) {
        let (http, cookies, failures, endpoint, checkid) = (
            http.clone(),
            cookies.clone(),
            failures.clone(),
            settings.endpoint.clone(),
            checkid.clone(),
        );
        workers.push(tokio::spawn(async move {
            let cookie = cookies[w % cookies.len()].clone();
            let mut latencies = Vec::new();
            if endpoint.scheme() == "http" {
                let cookie = cookie.and_then(|c| HeaderValue::from_str(&c).ok());
                let checkid_target = match checkid.query() {
                    Some(q) => format!("{}?{q}", checkid.path()),
                    None => checkid.path().to_owned(),
                };
                let mut connection = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if connection.is_none() {
                        match RawConnection::open(&endpoint).await {
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
                    let result =
                        one_raw_login(c, endpoint.path(), &checkid_target, cookie.as_ref()).await;
                    match result {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(e) => {
                            // A fresh connection for the next login, as a browser would.
                            connection = None;
                            failures.record(e);
                        }
                    }
                }
                return latencies;
            }
            while Instant::now() < deadline {
                let t = Instant::now();
                match one_login(&http, &endpoint, &checkid, cookie.as_deref()).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => failures.record(e),
                }
            }
            latencies
        }));
    }
    report("logins", started, workers, &failures).await
}
