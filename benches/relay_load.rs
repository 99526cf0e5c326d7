//! Load runner for the mediator (issue 14): 1,000 simulated devices in 300
//! groups on loopback, each reflecting sealed envelopes through one relay
//! process. Reports envelopes delivered per second at full load, p50/p99
//! latency from reflect to delivery at half that load, and the relay's RSS
//! with every device connected; with the embedded store (sled) and, when
//! `SEALDEX_REDIS=redis://127.0.0.1:PORT` is set, with Redis Streams, and
//! when `SEALDEX_NATS=nats://127.0.0.1:PORT` is set, with NATS JetStream.
//!
//! ```text
//! ulimit -n 4096   # 1,000 WebSockets per process, each side
//! cargo bench --features mediator --bench relay_load
//! SEALDEX_BENCH_SECONDS=5 SEALDEX_BENCH_DEVICES=1000 SEALDEX_BENCH_GROUPS=300 ...
//! SEALDEX_BENCH_ENGINES=nats,sled   # which engines, in this order (default sled,redis,nats)
//! SEALDEX_BENCH_PACED_RATE=10000    # the paced phase's rate (default: half the full load)
//! SEALDEX_BENCH_RELAY_LOG=sealdex::sync::relay=trace   # the relay's log, on stderr
//! SEALDEX_BENCH_STALLS=1            # each second, how late the relay's and the generator's runtimes wake (stderr)
//! ```
//!
//! The relay runs in a child process (this executable re-run with
//! `--relay`), so its RSS is its own. Bounded: each phase lasts
//! `SEALDEX_BENCH_SECONDS` (default 5), and the whole run stops after at
//! most two minutes. `cargo test` never runs it (harness = false benches
//! only run under `cargo bench`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sealdex::sync::client::{Device, DeviceConfig, Event};
use sealdex::sync::keys::{GroupKey, GroupKeys};
use sealdex::sync::relay::{QueueBackend, Relay, RelayConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SEALDEX_BENCH_STALLS: a task in this runtime that asks to wake every
/// millisecond and prints, each second, how late its wake-ups were (p50,
/// p99, max in µs): a blocked or starved worker thread shows as lateness.
fn stall_probe(who: &'static str) {
    if std::env::var_os("SEALDEX_BENCH_STALLS").is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut late = Vec::new();
        let mut since = Instant::now();
        loop {
            let want = Instant::now() + Duration::from_millis(1);
            tokio::time::sleep_until(want.into()).await;
            late.push(Instant::now().saturating_duration_since(want).as_micros() as u64);
            if since.elapsed() >= Duration::from_secs(1) {
                late.sort_unstable();
                let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
                eprintln!(
                    "{who} wake-up lateness µs: p50 {} p99 {} max {} ({} wake-ups)",
                    at(0.5),
                    at(0.99),
                    at(1.0),
                    late.len()
                );
                late.clear();
                since = Instant::now();
            }
        }
    });
}

fn relay_main(args: &[String]) {
    let backend = args.get(2).cloned().unwrap_or_default();
    // SEALDEX_BENCH_RELAY_LOG: a tracing filter for the relay's log on
    // stderr, e.g. "sealdex::sync::relay=trace" for each flush's time and
    // each reflection's wait for it.
    if let Ok(filter) = std::env::var("SEALDEX_BENCH_RELAY_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = match QueueBackend::from_url(&backend) {
            Some(distributed) => RelayConfig::distributed(distributed),
            None => RelayConfig::embedded(backend.into()),
        };
        cfg.window = 64;
        stall_probe("relay");
        let relay = Relay::start(cfg).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        relay.serve(listener).await;
    });
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SIGTERM first, so a profiler wrapping the relay writes its
        // output; SIGKILL if it is still there after 20 s.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU seconds of a process so far.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}

fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

const PAUSED: u64 = u64::MAX;

struct Stats {
    delivered: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u64>>,
    ack_latencies_us: std::sync::Mutex<Vec<u64>>,
    record: AtomicBool,
}

async fn run(label: &str, backend: String) {
    let devices = env_usize("SEALDEX_BENCH_DEVICES", 1000);
    let groups = env_usize("SEALDEX_BENCH_GROUPS", 300).max(1);
    let seconds = env_usize("SEALDEX_BENCH_SECONDS", 5) as u64;
    let exe = std::env::current_exe().unwrap();
    // SEALDEX_BENCH_RELAY_WRAP runs the relay under a tool, e.g.
    // "valgrind --tool=callgrind --callgrind-out-file=/tmp/relay.cg".
    let wrap = std::env::var("SEALDEX_BENCH_RELAY_WRAP").unwrap_or_default();
    let mut argv: Vec<String> = wrap.split_whitespace().map(str::to_owned).collect();
    argv.push(exe.display().to_string());
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["--relay", &backend])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let relay = KillOnDrop(child);
    let url = format!("ws://{}", line.trim());
    let rss_idle = rss_mib(relay.0.id());

    let epoch = Instant::now();
    let stats = Arc::new(Stats {
        delivered: AtomicU64::new(0),
        latencies_us: std::sync::Mutex::new(Vec::new()),
        ack_latencies_us: std::sync::Mutex::new(Vec::new()),
        record: AtomicBool::new(false),
    });
    let group_keys: Vec<Arc<GroupKeys>> = (0..groups)
        .map(|_| Arc::new(GroupKeys::derive(&GroupKey::random().unwrap()).unwrap()))
        .collect();
    let mut handles = Vec::new();
    let connect_start = Instant::now();
    for i in 0..devices {
        let keys = group_keys[i % groups].clone();
        let mut cfg = DeviceConfig::new(&url, keys, i as u64 + 1);
        cfg.reconnect = false;
        let d = Device::connect(cfg).await.expect("device connects");
        handles.push(d);
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let rss_connected = rss_mib(relay.0.id());

    // Each device: one task receives, applies and acks; one reflects,
    // keeping up to 4 reflections in flight, paced when a rate is set.
    let stop = Arc::new(AtomicBool::new(false));
    // 0: as fast as acks allow; PAUSED: no new reflections; else the gap
    // between one device's reflections, in microseconds.
    let rate_per_device = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (index, mut dev) in handles.into_iter().enumerate() {
        let mut events = dev.take_events();
        let dev = Arc::new(dev);
        let (rx_stats, rx_dev) = (stats.clone(), dev.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match ev {
                    Event::Reflected {
                        reflected_id,
                        plaintext,
                        ..
                    } => {
                        let sent = u64::from_le_bytes(plaintext[..8].try_into().unwrap());
                        let lat = (epoch.elapsed().as_micros() as u64).saturating_sub(sent);
                        let _ = rx_dev.ack(reflected_id).await;
                        rx_stats.delivered.fetch_add(1, Ordering::Relaxed);
                        if rx_stats.record.load(Ordering::Relaxed) {
                            rx_stats.latencies_us.lock().unwrap().push(lat);
                        }
                    }
                    Event::Closed { .. } => break,
                    _ => {}
                }
            }
        }));
        let (stop, rate, stats) = (stop.clone(), rate_per_device.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            let mut inflight = std::collections::VecDeque::new();
            let mut next_send = Instant::now();
            // Each device starts its paced phase at its own offset within
            // one gap (its index's share of the devices), so that the load
            // arrives evenly. Without the offset every device, released
            // from the pause within the same few milliseconds, sends at the
            // same moment once per gap: the relay then sees bursts of one
            // reflection from every device, and the latencies measure the
            // time to drain a burst, not the relay at the paced rate.
            let offset_permille = (index as u64 * 1000) / devices as u64;
            let mut phased = false;
            while !stop.load(Ordering::Relaxed) {
                match rate.load(Ordering::Relaxed) {
                    0 => {}
                    PAUSED => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        phased = false;
                        continue;
                    }
                    gap => {
                        if !phased {
                            next_send = Instant::now()
                                + Duration::from_micros(gap * offset_permille / 1000);
                            phased = true;
                        }
                        tokio::time::sleep_until(next_send.into()).await;
                        next_send = next_send.max(Instant::now() - Duration::from_secs(1))
                            + Duration::from_micros(gap);
                    }
                }
                let now_us = epoch.elapsed().as_micros() as u64;
                let mut payload = now_us.to_le_bytes().to_vec();
                payload.resize(200, 0x5a);
                match dev.reflect(&payload) {
                    // The ack is awaited in a task of its own, so its
                    // latency (reflect to the relay's durable ack) is
                    // measured apart from the delivery's.
                    Ok(ack) => {
                        let stats = stats.clone();
                        inflight.push_back(tokio::spawn(async move {
                            let r = ack.await;
                            if stats.record.load(Ordering::Relaxed) {
                                let lat =
                                    (epoch.elapsed().as_micros() as u64).saturating_sub(now_us);
                                stats.ack_latencies_us.lock().unwrap().push(lat);
                            }
                            r
                        }))
                    }
                    Err(_) => break,
                }
                if inflight.len() >= 4
                    && let Some(a) = inflight.pop_front()
                    && !matches!(a.await, Ok(Ok(_)))
                {
                    break;
                }
            }
        }));
    }

    let relay_pid = relay.0.id().to_string();
    // SEALDEX_BENCH_ENGINE_PID: the Redis or NATS server's pid, to report
    // the engine's CPU next to the relay's.
    let engine_pid = std::env::var("SEALDEX_BENCH_ENGINE_PID").ok();
    let engine = || engine_pid.as_deref().map_or(f64::NAN, cpu_secs);
    let cpu = || (cpu_secs(&relay_pid), cpu_secs("self"), engine());

    // Phase 1: full load.
    tokio::time::sleep(Duration::from_secs(1)).await; // warm up
    let d0 = stats.delivered.load(Ordering::Relaxed);
    let (rc0, lc0, ec0) = cpu();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let el0 = t0.elapsed().as_secs_f64();
    let full = (stats.delivered.load(Ordering::Relaxed) - d0) as f64 / el0;
    let (rc1, lc1, ec1) = cpu();
    let rss_load = rss_mib(relay.0.id());

    // Drain: no new reflections until everything queued is delivered, so
    // the half-load latencies do not include the full load's backlog.
    rate_per_device.store(PAUSED, Ordering::Relaxed);
    let drain_start = Instant::now();
    let mut last = u64::MAX;
    while drain_start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stats.delivered.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();

    // Phase 2: half that load, paced, with latencies recorded.
    let fanout = (devices as f64 / groups as f64 - 1.0).max(1.0);
    // SEALDEX_BENCH_PACED_RATE: deliveries/s for the paced phase instead of
    // half the full load (to compare builds at the same rate, e.g. 10000,
    // half of issue 14's 20,000/s target).
    let paced = std::env::var("SEALDEX_BENCH_PACED_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(full / 2.0);
    let per_device_f = paced / fanout / devices as f64;
    // Paced in microseconds between reflections per device.
    let gap_us = (1_000_000.0 / per_device_f.max(0.01)) as u64;
    rate_per_device.store(gap_us, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stats.record.store(true, Ordering::Relaxed);
    let d1 = stats.delivered.load(Ordering::Relaxed);
    let (rc2, lc2, ec2) = cpu();
    let t1 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stats.record.store(false, Ordering::Relaxed);
    let el1 = t1.elapsed().as_secs_f64();
    let half = (stats.delivered.load(Ordering::Relaxed) - d1) as f64 / el1;
    let (rc3, lc3, ec3) = cpu();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let mut lats = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
    lats.sort_unstable();
    let mut acks = std::mem::take(&mut *stats.ack_latencies_us.lock().unwrap());
    acks.sort_unstable();
    let at = |v: &[u64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    let pct = |p: f64| at(&lats, p);
    println!(
        "{label}: {devices} devices in {groups} groups (connected in {connect_secs:.1} s)\n  \
         full load: {full:.0} envelopes delivered/s; CPU relay {:.2} + load generator {:.2} + engine {:.2} cores\n  \
         drained in {drain_secs:.1} s\n  \
         half load ({per_device_f:.2}/s per device): {half:.0} delivered/s, reflect->delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples); reflect->ack p50 {:.1} ms, p99 {:.1} ms; CPU relay {:.2} + generator {:.2} + engine {:.2} cores\n  \
         relay RSS: idle {rss_idle:.0} MiB, {devices} connected {rss_connected:.0} MiB, under load {rss_load:.0} MiB",
        (rc1 - rc0) / el0,
        (lc1 - lc0) / el0,
        (ec1 - ec0) / el0,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        lats.len(),
        at(&acks, 0.50),
        at(&acks, 0.99),
        (rc3 - rc2) / el1,
        (lc3 - lc2) / el1,
        (ec3 - ec2) / el1,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--relay") {
        return relay_main(&args);
    }
    // `cargo bench` passes `--bench`; anything else (e.g. a test harness
    // listing) does nothing.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let devices = env_usize("SEALDEX_BENCH_DEVICES", 1000) as u64;
    if let Some(limit) = fd_limit()
        && limit < devices + 256
    {
        eprintln!(
            "relay_load: the open-file limit is {limit}; run `ulimit -n {}` first",
            devices * 2 + 256
        );
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Duration::from_secs(120);
    rt.block_on(async {
        stall_probe("generator");
        let dir = tempfile::tempdir().unwrap();
        let embedded = dir.path().join("relay").display().to_string();
        let order =
            std::env::var("SEALDEX_BENCH_ENGINES").unwrap_or_else(|_| "sled,redis,nats".into());
        for engine in order.split(',').map(str::trim) {
            let (label, var, backend) = match engine {
                "sled" => ("embedded (sled)", "", Some(embedded.clone())),
                "redis" => (
                    "distributed (Redis Streams)",
                    "SEALDEX_REDIS=redis://127.0.0.1:PORT",
                    std::env::var("SEALDEX_REDIS")
                        .ok()
                        .filter(|u| !u.is_empty()),
                ),
                "nats" => (
                    "distributed (NATS JetStream)",
                    "SEALDEX_NATS=nats://127.0.0.1:PORT",
                    std::env::var("SEALDEX_NATS").ok().filter(|u| !u.is_empty()),
                ),
                other => {
                    println!("{other}: unknown engine (sled, redis, nats)");
                    continue;
                }
            };
            let Some(backend) = backend else {
                println!("{label}: skipped (set {var})");
                continue;
            };
            if tokio::time::timeout(deadline, run(label, backend))
                .await
                .is_err()
            {
                println!("{label}: stopped at the two-minute bound");
            }
        }
    });
}
