//! Shared pieces of the throughput benchmarks: rounds of concurrent operations and their tally.

pub mod bare;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operations per measured round.
pub const ROUND_OPS: usize = 250;

/// A number from the environment, or the default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// Runs `ops` calls of `op`, `concurrency` at a time; returns the wall time and each latency.
pub async fn run_round<F, Fut>(ops: usize, concurrency: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(ops / concurrency + 1);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        return latencies;
                    }
                    let t = Instant::now();
                    op(i).await;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(ops);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    (started.elapsed(), latencies)
}

/// Ops, wall time and latencies of one loop.
#[derive(Default)]
pub struct Tally {
    /// Operations measured.
    pub ops: usize,
    /// Wall time of the measured rounds.
    pub wall: Duration,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Adds one round.
    pub fn add(&mut self, (wall, latencies): (Duration, Vec<Duration>)) {
        self.ops += latencies.len();
        self.wall += wall;
        self.latencies.extend(latencies);
    }

    /// Throughput over the measured rounds.
    pub fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    /// The latency at quantile `p` (0..=1).
    pub fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let rank = ((self.latencies.len() as f64 * p).ceil() as usize).max(1);
        self.latencies[rank.min(self.latencies.len()) - 1]
    }

    /// Prints one line: ops, wall, ops/s, p50, p99.
    pub fn report(&mut self, name: &str) {
        let (p50, p99) = (self.percentile(0.50), self.percentile(0.99));
        println!(
            "{name:<6} {:>6} ops in {:>7.2} s  {:>8.1} ops/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
            self.ops,
            self.wall.as_secs_f64(),
            self.ops_per_second(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
}
