//! An online store at scale: load 1,000,000 entities × 32 float32 features, report the
//! load rate and the memory the rows take, then lookup latency for one entity × 32
//! features and for 100 entities per call. Embedded by default; `--backend redis://…`
//! runs the same against Redis (memory from its INFO), so the two compare in one run.
//!
//!     cargo run --release -p mercator-benches --bin online_store -- --entities 1000000
//!     cargo run --release -p mercator-benches --bin online_store -- --backend redis://127.0.0.1:6379/2

use std::time::Instant;

use clap::Parser;
use mercator_features::online::{EmbeddedStore, OnlineStore, PushRow, RedisStore};
use mercator_features::{Definitions, Value};

#[derive(Debug, Parser)]
struct Args {
    /// Entities to load.
    #[arg(long, default_value_t = 1_000_000)]
    entities: usize,
    /// Rows per write call (one fsync each).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Lookup calls per scenario.
    #[arg(long, default_value_t = 20_000)]
    lookups: usize,
    /// `embedded`, or a Redis URL (its database is flushed first).
    #[arg(long, default_value = "embedded")]
    backend: String,
}

/// Redis' own count of the memory it uses, in bytes.
async fn redis_used_memory(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

const FEATURES: usize = 32;

/// The allocator the server binary uses, so lookups allocate their answers as they do
/// there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fields: Vec<String> = (0..FEATURES).map(|i| format!("f{i:02}")).collect();
    let defs = Definitions::from_toml(&format!(
        "[[entities]]\nname = \"customer\"\njoin_keys = [\"customer_id\"]\n\n[[feature_views]]\nname = \"wide\"\nentity = \"customer\"\nfields = [{}]\n",
        fields
            .iter()
            .map(|f| format!("{{ name = \"{f}\", type = \"float32\" }}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let view = &defs.views["wide"];
    let dir = tempfile::tempdir()?;
    let redis = args.backend.starts_with("redis");
    if redis {
        let client = redis::Client::open(args.backend.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let () = redis::cmd("FLUSHDB").query_async(&mut conn).await?;
    }
    let embedded = (!redis)
        .then(|| EmbeddedStore::open(dir.path()))
        .transpose()?;
    let store: std::sync::Arc<dyn OnlineStore> = match &embedded {
        Some(e) => std::sync::Arc::new(e.clone()),
        None => std::sync::Arc::new(RedisStore::connect(&args.backend).await?),
    };
    let memory = || async {
        if redis {
            redis_used_memory(&args.backend).await.unwrap_or(0)
        } else {
            rss_bytes()
        }
    };
    let rss_before = memory().await;
    let started = Instant::now();
    for start in (0..args.entities).step_by(args.batch) {
        let rows: Vec<PushRow> = (start..(start + args.batch).min(args.entities))
            .map(|i| PushRow {
                key: vec![format!("C{i:07}")],
                event_time_micros: 1,
                values: fields
                    .iter()
                    .enumerate()
                    .map(|(j, f)| (f.clone(), Some(Value::Float32((i * 31 + j) as f32))))
                    .collect(),
            })
            .collect();
        store.write(view, &rows).await?;
    }
    let load = started.elapsed().as_secs_f64();
    let rss = memory().await.saturating_sub(rss_before);
    let wal = std::fs::metadata(dir.path().join("online.wal")).map_or(0, |m| m.len());
    println!(
        "{}: loaded {} entities x {FEATURES} float32 in {load:.1} s ({:.0} rows/s); memory {:.0} MiB ({:.0} bytes/entity); log {:.0} MiB",
        store.backend(),
        args.entities,
        args.entities as f64 / load,
        rss as f64 / 1048576.0,
        rss as f64 / args.entities as f64,
        wal as f64 / 1048576.0
    );

    if let Some(e) = &embedded {
        let own = e.memory_bytes()? as f64;
        println!(
            "the store's own count: {:.0} MiB ({:.0} bytes/entity)",
            own / 1048576.0,
            own / args.entities as f64
        );
        // Restart cost: replaying the log as written, then compacting it, then replaying
        // the compacted log (a second process cannot open it while this one holds it).
        let t = Instant::now();
        e.compact()?;
        let compact = t.elapsed().as_secs_f64();
        println!(
            "compacted the log to {:.0} MiB in {compact:.1} s",
            e.log_bytes()? as f64 / 1048576.0
        );
    }
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    for per_call in [1usize, 100] {
        let mut latencies = Vec::with_capacity(args.lookups);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let started = Instant::now();
        for _ in 0..args.lookups {
            let keys: Vec<Vec<String>> = (0..per_call)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    vec![format!("C{:07}", x % args.entities as u64)]
                })
                .collect();
            let t = Instant::now();
            let got = store.read(view, &keys, &names, 1).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(got);
        }
        let total = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "lookup {per_call:>3} entities x {FEATURES} features: {:.0} calls/s, p50 {:.1} us, p99 {:.1} us",
            args.lookups as f64 / total,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    Ok(())
}
