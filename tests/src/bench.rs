//! Shared pieces of the throughput benchmarks: rounds of concurrent operations and their tally.

pub mod bare;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operations per measured round, unless `PREDEBIT_BENCH_ROUND` says otherwise: long enough that
/// one pause of DynamoDB Local's JVM does not decide a round's ratio.
pub const ROUND_OPS: usize = 500;

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

/// CPU time this process has used (user + system), from `/proc/self/stat` in clock ticks of
/// 1/100 s (Linux reports USER_HZ = 100 there); `None` where that file is not.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Awaits `round`, and the CPU time this process used meanwhile.
async fn timed<T>(round: impl Future<Output = T>) -> (T, Duration) {
    let before = process_cpu();
    let out = round.await;
    let used = before.zip(process_cpu()).map(|(a, b)| b.saturating_sub(a));
    (out, used.unwrap_or_default())
}

/// Ops, wall time, latencies and this process's CPU time of one loop.
#[derive(Default)]
pub struct Tally {
    /// Operations measured.
    pub ops: usize,
    /// Wall time of the measured rounds.
    pub wall: Duration,
    /// This process's CPU time during the measured rounds (the client side only: DynamoDB Local
    /// and the other services are processes of their own).
    pub cpu: Duration,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Adds one round.
    pub fn add(&mut self, (wall, latencies): (Duration, Vec<Duration>)) {
        self.ops += latencies.len();
        self.wall += wall;
        self.latencies.extend(latencies);
    }

    /// This process's CPU time per operation, in microseconds.
    pub fn cpu_per_op_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
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

/// The median of `values` (NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// How long and how hard a comparison runs.
pub struct Comparison {
    /// What the function loop is called in the report.
    pub name: &'static str,
    /// Operations per loop before measuring (both loops).
    pub warm_up_ops: usize,
    /// Operations per loop measured.
    pub ops: usize,
    /// Operations in flight.
    pub concurrency: usize,
    /// Time budget of the measured rounds.
    pub budget: Duration,
    /// Operations per round and loop.
    pub round_ops: usize,
}

impl Comparison {
    /// `PREDEBIT_BENCH_OPS`, `PREDEBIT_BENCH_WARM_UP`, `PREDEBIT_BENCH_CONCURRENCY` (default 8),
    /// `PREDEBIT_BENCH_SECONDS` (default 120) and `PREDEBIT_BENCH_ROUND` (default [`ROUND_OPS`]),
    /// with the bench's own defaults for the first two.
    pub fn from_env(name: &'static str, ops: usize, warm_up_ops: usize) -> Self {
        Self {
            name,
            warm_up_ops: env_usize("PREDEBIT_BENCH_WARM_UP", warm_up_ops),
            ops: env_usize("PREDEBIT_BENCH_OPS", ops),
            concurrency: env_usize("PREDEBIT_BENCH_CONCURRENCY", 8),
            budget: Duration::from_secs(env_usize("PREDEBIT_BENCH_SECONDS", 120) as u64),
            round_ops: env_usize("PREDEBIT_BENCH_ROUND", ROUND_OPS).max(1),
        }
    }

    /// Warms both loops up, then measures them in alternating rounds (so drift falls on both
    /// alike) and prints each loop's figures, the ratio function/bare and the per-round ratios.
    pub async fn run<F, Fut, B, BFut>(&self, function_op: F, bare_op: B)
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send,
        B: Fn(usize) -> BFut + Clone + Send + 'static,
        BFut: Future<Output = ()> + Send,
    {
        let (name, concurrency, round) = (self.name, self.concurrency, self.round_ops);
        let warm_up = Instant::now();
        for _ in 0..self.warm_up_ops.div_ceil(round) {
            run_round(round, concurrency, function_op.clone()).await;
            run_round(round, concurrency, bare_op.clone()).await;
        }
        println!(
            "warm-up: {} ops per loop in {:.1} s; then up to {} ops per loop in rounds of {round}, {} in flight, {} s budget",
            self.warm_up_ops,
            warm_up.elapsed().as_secs_f64(),
            self.ops,
            concurrency,
            self.budget.as_secs()
        );
        let (mut function, mut bare) = (Tally::default(), Tally::default());
        let started = Instant::now();
        let mut round_ratios = Vec::new();
        while function.ops < self.ops && started.elapsed() < self.budget {
            let ops = round.min(self.ops - function.ops);
            // Alternate which loop goes first, so neither always follows the other.
            let ((f, f_cpu), (b, b_cpu)) = if round_ratios.len() % 2 == 0 {
                let f = timed(run_round(ops, concurrency, function_op.clone())).await;
                (f, timed(run_round(ops, concurrency, bare_op.clone())).await)
            } else {
                let b = timed(run_round(ops, concurrency, bare_op.clone())).await;
                (
                    timed(run_round(ops, concurrency, function_op.clone())).await,
                    b,
                )
            };
            function.cpu += f_cpu;
            bare.cpu += b_cpu;
            // Same op count in both: the ratio of throughputs is the inverse ratio of walls.
            round_ratios.push(b.0.as_secs_f64() / f.0.as_secs_f64());
            function.add(f);
            bare.add(b);
        }
        function.report(name);
        bare.report("bare");
        println!(
            "ratio {name}/bare (ops/s): {:.3}",
            function.ops_per_second() / bare.ops_per_second()
        );
        println!(
            "this process's CPU per op: {name} {:.1} us, bare {:.1} us ({:+.1} us)",
            function.cpu_per_op_us(),
            bare.cpu_per_op_us(),
            function.cpu_per_op_us() - bare.cpu_per_op_us()
        );
        // The medians of the first and the second half of the rounds: when they agree, there were
        // enough rounds for the median to be stable.
        let (first, second) = round_ratios.split_at(round_ratios.len() / 2);
        let (first, second) = (median(first), median(second));
        round_ratios.sort_by(f64::total_cmp);
        println!(
            "per-round ratio over {} rounds: median {:.3}, min {:.3}, max {:.3}; halves {:.3} and {:.3}",
            round_ratios.len(),
            median(&round_ratios),
            round_ratios[0],
            round_ratios[round_ratios.len() - 1],
            first,
            second,
        );
    }
}
