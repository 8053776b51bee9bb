//! `akaid ue bench`: a load generator for Ub. Handsets derive their keys from the seed that
//! `akaid subscriber generate` used, so no key file is needed; each worker bootstraps one
//! handset after another for the given duration, and the report gives completed bootstraps
//! per second with p50/p99 latency.

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
            "bootstraps: {} completed, {} failed in {:.1} s",
            self.completed,
            self.failed,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "rate:       {:.0} bootstraps/s", self.per_second)?;
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

fn handset(seed: &str, index: u64) -> Result<Handset, UeError> {
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
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut workers = Vec::new();
    for _ in 0..settings.concurrency.max(1) {
        let (client, handsets, next, failed, first_error, bsf) = (
            client.clone(),
            handsets.clone(),
            next.clone(),
            failed.clone(),
            first_error.clone(),
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
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.map_err(|e| UeError::Http(e.to_string()))?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let completed = latencies.len() as u64;
    let first_error = first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(BenchReport {
        completed,
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        per_second: completed as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        first_error,
    })
}
