"""Training sets at scale: `mercator features history` (the bounded-memory point-in-time
join, no server) over generated data, its peak memory against the configured bound, and
its rows checked against DuckDB's ASOF JOIN on a sample. A benchmark, not a test: it
asserts no time, but it fails if a single sampled row differs from the reference.

    cargo build --release -p mercator-server --bin mercator
    .venv/bin/pip install duckdb==2.0.1 polars==2.1.0     # the reference and the generator
    .venv/bin/python benches/pit_join.py --entity-rows 1000000 --history-rows 10000000
    .venv/bin/python benches/pit_join.py --entity-rows 10000000 --history-rows 100000000

The data (generated, never committed; `--work`, removed unless `--keep`):
- one view `activity` of 10 float32 features (quarter steps in [0, 64), as counts and
  ratios are) keyed by `customer_id`, 1,000,000 customers, `--history-rows` events spread
  over 2025 (written straight in the offline store's layout, `view=activity/date=…/`,
  one file a day), TTL 90 days;
- `--entity-rows` entity rows: a random customer (a few never seen) at a random time of
  the year, and a label.

What it reports:
- Mercator: wall time, rows per second, partitions, bytes spilled, and peak RSS (from
  `/usr/bin/time`), beside the RSS of a `features list` in the same data directory (the
  process's fixed overhead: runtime, definitions, registry) and the bound;
- the reference: DuckDB `ASOF LEFT JOIN` of the first `--sample` entity rows against the
  whole history, the TTL applied per row in SQL (`e.t - h.t <= ttl`), compared cell by
  cell with Mercator's first rows; and how many of those rows a TTL applied only as a
  global range (history after the earliest entity time less the TTL, as Feast's offline
  engines do) would give a value Mercator's per-row TTL withholds.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/mercator")
DAY_US = 86_400_000_000
START_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
TTL_DAYS = 90
FEATURES = [f"f{i}" for i in range(10)]
CUSTOMERS = 1_000_000

DEFS = f"""
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "{TTL_DAYS}days"
fields = [{", ".join(f'{{ name = "{f}", type = "float32" }}' for f in FEATURES)}]
"""


def generate(work: str, history_rows: int, entity_rows: int, seed: int) -> str:
    import polars as pl

    rng = np.random.default_rng(seed)
    offline = os.path.join(work, "data/features/offline/view=activity")
    per_day, extra = divmod(history_rows, 365)
    for day in range(365):
        n = per_day + (extra if day == 364 else 0)
        date = time.strftime("%Y-%m-%d", time.gmtime((START_US + day * DAY_US) / 1e6))
        folder = os.path.join(offline, f"date={date}")
        os.makedirs(folder, exist_ok=True)
        created = START_US + (day + 1) * DAY_US
        columns = {
            "customer_id": pl.Series(rng.integers(0, CUSTOMERS, n)).cast(pl.String),
            "event_timestamp": pl.Series(START_US + day * DAY_US + rng.integers(0, DAY_US, n)),
            "created_timestamp": pl.Series(np.full(n, created, dtype=np.int64)),
        }
        for f in FEATURES:
            columns[f] = pl.Series(rng.integers(0, 256, n).astype(np.float32) / 4)
        frame = pl.DataFrame(columns).with_columns(
            ("c" + pl.col("customer_id")).alias("customer_id"),
            pl.col("event_timestamp").cast(pl.Datetime("us", "UTC")),
            pl.col("created_timestamp").cast(pl.Datetime("us", "UTC")),
        )
        frame.write_parquet(
            os.path.join(folder, f"{created:020}-{seed:08x}{day:024x}.parquet"),
            statistics=True,
            row_group_size=131_072,
            # Mercator reads Snappy, LZ4 and gzip Parquet, not zstd (polars' default).
            compression="snappy",
        )
    entities = os.path.join(work, "entities.parquet")
    # A few customers past the million never pushed anything.
    keys = pl.Series(rng.integers(0, CUSTOMERS + CUSTOMERS // 100, entity_rows)).cast(pl.String)
    pl.DataFrame(
        {
            "customer_id": keys,
            "event_timestamp": pl.Series(START_US + rng.integers(0, 365 * DAY_US, entity_rows)),
            "label": pl.Series(rng.integers(0, 2, entity_rows)),
        }
    ).with_columns(
        ("c" + pl.col("customer_id")).alias("customer_id"),
        pl.col("event_timestamp").cast(pl.Datetime("us", "UTC")),
    ).write_parquet(entities, row_group_size=131_072, compression="snappy")
    return entities


def timed(args: list, **kw) -> tuple:
    """Runs a command under /usr/bin/time -v: (stdout, seconds, peak RSS in bytes)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *args], capture_output=True, text=True, **kw
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return done.stdout, seconds, int(rss.group(1)) * 1024 if rss else 0


def reference(work: str, history_glob: str, entities: str, sample: int):
    """DuckDB's ASOF join of the first `sample` entity rows, TTL per row; and the same
    join with the TTL only as a global range."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET temp_directory = '{work}/duckdb.tmp'")
    con.execute(
        f"""CREATE TABLE e AS SELECT row_number() OVER () - 1 AS row_id, customer_id,
            event_timestamp FROM read_parquet('{entities}') LIMIT {sample}"""
    )
    select = ", ".join(f"h.{f}" for f in FEATURES)
    asof = f"""
        SELECT e.row_id, e.event_timestamp AS t, h.event_timestamp AS ht, {select}
        FROM e ASOF LEFT JOIN read_parquet('{history_glob}', hive_partitioning = false) h
          ON e.customer_id = h.customer_id AND e.event_timestamp >= h.event_timestamp
        ORDER BY e.row_id"""
    # Nulls come back masked: fill them (no match: no time, no values).
    raw = con.execute(asof).fetchnumpy()
    rows = {k: np.ma.filled(v.astype("datetime64[us]"), np.datetime64("NaT"))
            if k in ("t", "ht") else np.ma.filled(v.astype(np.float64), np.nan)
            for k, v in raw.items()}
    ttl = np.timedelta64(TTL_DAYS * DAY_US, "us")
    t, ht = rows["t"], rows["ht"]
    found = ~np.isnat(ht)
    fresh = found & ((t - np.where(found, ht, t)) <= ttl)
    # A global range: everything after the earliest entity time less the TTL counts.
    global_range = found & (ht >= t.min() - ttl)
    return rows, found, fresh, global_range


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entity-rows", type=int, default=1_000_000)
    p.add_argument("--history-rows", type=int, default=10_000_000)
    p.add_argument("--sample", type=int, default=1_000_000)
    p.add_argument("--memory-mb", type=int, default=256)
    p.add_argument("--work", default=None, help="a folder for the data (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--seed", type=int, default=34)
    a = p.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="pit-join-", dir=os.path.join(ROOT, "target"))
    os.makedirs(work, exist_ok=True)
    try:
        run(a, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(a, work: str) -> None:
    import pyarrow.parquet as pq

    data = os.path.join(work, "data")
    started = time.perf_counter()
    entities = generate(work, a.history_rows, a.entity_rows, a.seed)
    print(f"generated {a.history_rows:,} history rows and {a.entity_rows:,} entity rows "
          f"in {time.perf_counter() - started:.0f}s")
    defs = os.path.join(work, "features.toml")
    with open(defs, "w") as f:
        f.write(DEFS)
    subprocess.run([BIN, "features", "apply", defs, "--data-dir", data], check=True,
                   capture_output=True)
    _, _, baseline = timed([BIN, "features", "list", "--data-dir", data])
    output = os.path.join(work, "train.parquet")
    out, seconds, peak = timed([
        BIN, "features", "history", "--data-dir", data, "--json",
        "--features", ",".join(f"activity:{f}" for f in FEATURES),
        "--entities", entities, "--output", output, "--memory-mb", str(a.memory_mb),
    ])
    summary = json.loads(out)
    mb = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    print(f"mercator: {a.entity_rows:,} x {a.history_rows:,}: {seconds:.1f}s, "
          f"{summary['rows_per_second']:,.0f} rows/s (history read + rows written), "
          f"{summary['partitions']} partitions, {summary['spill_bytes'] / 1e9:.2f} GB spilled")
    print(f"  peak RSS {mb(peak)}: bound {mb(a.memory_mb << 20)} + fixed overhead "
          f"{mb(baseline)} (a `features list` in the same data dir) = {mb((a.memory_mb << 20) + baseline)}"
          f"; over the bound by {mb(max(0, peak - baseline - (a.memory_mb << 20)))}")
    for v in summary["views"]:
        print(f"  {v['view']}: {v['rows_read']:,} history rows read from {v['files_read']} of "
              f"{v['files']} files")

    sample = min(a.sample, a.entity_rows)
    started = time.perf_counter()
    glob = os.path.join(data, "features/offline/view=activity/*/*.parquet")
    ref, found, fresh, global_range = reference(work, glob, entities, sample)
    print(f"duckdb ASOF JOIN of {sample:,} rows against the whole history: "
          f"{time.perf_counter() - started:.1f}s")
    got = pq.ParquetFile(output)
    mine = {f: [] for f in FEATURES}
    taken = 0
    for batch in got.iter_batches(batch_size=262_144, columns=[f"activity__{f}" for f in FEATURES]):
        for f in FEATURES:
            mine[f].append(batch.column(f"activity__{f}").to_numpy(zero_copy_only=False))
        taken += batch.num_rows
        if taken >= sample:
            break
    bad = 0
    for f in FEATURES:
        m = np.concatenate(mine[f])[:sample].astype(np.float64)
        want = np.where(fresh, ref[f], np.nan)
        same = (np.isnan(m) & np.isnan(want)) | (m == want)
        bad += int((~same).sum())
    print(f"  compared {sample:,} rows x {len(FEATURES)} features: {bad} cells differ; "
          f"{int(fresh.sum()):,} rows have values, {int((~found).sum()):,} have no event "
          f"before their time, {int((found & ~fresh).sum()):,} only one older than the TTL")
    print(f"  a TTL applied as a global range would give values to "
          f"{int((global_range & ~fresh).sum()):,} rows whose latest event is older than "
          f"{TTL_DAYS} days at their own time (Mercator, per row: null)")
    if bad:
        sys.exit("the join differs from the reference")


if __name__ == "__main__":
    main()
