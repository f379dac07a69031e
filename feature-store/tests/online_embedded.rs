//! The embedded online store's durability: replay after reopen, schema growth, refused
//! calls never logged, and a writer process killed with SIGKILL mid-stream. What both
//! backends must do is in `online_store.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mercator_features::online::{EmbeddedStore, PushRow};
use mercator_features::{Definitions, FeatureError, Status, Value};

mod common;
use common::{DEFS, row, view};

/// Runs this file's tests one at a time. One of them spawns child processes, and a child
/// holds copies of the parent's descriptors until it execs, among them another test's
/// locked log: that test's reopen would then find its log "in use by another process".
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_refused_call_is_not_logged() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut bad = row("c2", 1, 1.0);
    bad.values[0].1 = Some(Value::Int64(1));
    assert!(matches!(
        store.write(&view("activity"), &[row("c1", 1, 1.0), bad]),
        Err(FeatureError::InvalidRow { row: 1, .. })
    ));
    assert_eq!(store.len("activity").unwrap(), 0);
    drop(store);
    assert_eq!(
        EmbeddedStore::open(dir.path())
            .unwrap()
            .len("activity")
            .unwrap(),
        0,
        "nothing of a refused call is logged"
    );
}

#[test]
fn writes_survive_reopen_and_schema_growth() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let v = view("activity");
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .write(&v, &[row("c1", 5, 1.5), row("c2", 5, 2.5)])
            .unwrap();
        store.write(&v, &[row("c1", 4, 9.0)]).unwrap();
    }
    let grown = Definitions::from_toml(&DEFS.replace(
        "{ name = \"vip\", type = \"bool\" },",
        "{ name = \"vip\", type = \"bool\" },\n  { name = \"nps\", type = \"float64\" },",
    ))
    .unwrap();
    let gv = &grown.views["activity"];
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let got = store
        .read(
            gv,
            &[vec!["c1".into()], vec!["c2".into()]],
            &["orders_90d", "nps"],
            5,
        )
        .unwrap();
    assert_eq!(
        got[0][0].0,
        Some(Value::Float32(1.5)),
        "replay keeps newest-wins"
    );
    assert_eq!(got[1][0].0, Some(Value::Float32(2.5)));
    assert_eq!(
        got[0][1],
        (None, Status::Missing),
        "a field added later reads as missing"
    );
    store
        .write(
            gv,
            &[PushRow {
                key: vec!["c1".into()],
                event_time_micros: 6,
                values: vec![("nps".into(), Some(Value::Float64(9.0)))],
            }],
        )
        .unwrap();
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let got = store
        .read(gv, &[vec!["c1".into()]], &["orders_90d", "nps"], 6)
        .unwrap();
    assert_eq!(
        got[0],
        vec![
            (None, Status::Missing),
            (Some(Value::Float64(9.0)), Status::Present)
        ]
    );
}

/// Not a test on its own: the child process of `acknowledged_writes_survive_sigkill`.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill as a separate process"]
fn child_writer() {
    let dir = std::env::var("MERCATOR_FS_CHILD_DIR").expect("child dir");
    let compact_min = std::env::var("MERCATOR_FS_CHILD_COMPACT_MIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(mercator_features::online::embedded::COMPACT_MIN_BYTES);
    let store = EmbeddedStore::open_with(std::path::Path::new(&dir), compact_min).expect("open");
    let v = view("activity");
    for i in 0..100_000i64 {
        store
            .write(&v, &[row(&format!("c{i}"), i, i as f32)])
            .expect("write");
        println!("acked {i}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let _serial = one_at_a_time();
    // Once with the default log, once compacting every few writes, so the kill may
    // land in the middle of a compaction.
    for compact_min in [None, Some(256)] {
        sigkill_after_200_acks(compact_min);
    }
}

fn sigkill_after_200_acks(compact_min: Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("sigkill test"))
        .args([
            "--ignored",
            "--exact",
            "child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MERCATOR_FS_CHILD_DIR", dir.path())
        .env(
            "MERCATOR_FS_CHILD_COMPACT_MIN",
            compact_min.map_or(String::new(), |m| m.to_string()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sigkill test");
    let mut last_acked = None;
    for line in BufReader::new(child.stdout.take().expect("sigkill test")).lines() {
        let line = line.expect("sigkill test");
        if let Some(n) = line.strip_prefix("acked ") {
            let n: i64 = n.parse().expect("sigkill test");
            last_acked = Some(n);
            if n >= 200 {
                child.kill().expect("sigkill test"); // SIGKILL: no destructors, no flush
                break;
            }
        }
    }
    child.wait().expect("sigkill test");
    let last = last_acked.expect("the child acknowledged writes");
    assert!(last >= 200, "the child stopped early at {last}");
    let store = EmbeddedStore::open(dir.path()).expect("sigkill test");
    let keys: Vec<Vec<String>> = (0..=last).map(|i| vec![format!("c{i}")]).collect();
    let got = store
        .read(&view("activity"), &keys, &["orders_90d"], last)
        .expect("sigkill test");
    for (i, values) in got.iter().enumerate() {
        assert_eq!(
            values[0].0,
            Some(Value::Float32(i as f32)),
            "acknowledged write {i} lost"
        );
    }
}

#[test]
fn the_log_is_compacted_and_replays_the_same() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let v = view("activity");
    let sales = view("sales");
    let sku = |i: usize| vec![format!("sku{i}"), "berlin".to_string()];
    let mut appended = 0u64;
    {
        let store = EmbeddedStore::open_with(dir.path(), 16 << 10).unwrap();
        for round in 0..300i64 {
            let rows: Vec<PushRow> = (0..20)
                .map(|i| row(&format!("c{i}"), round, round as f32))
                .collect();
            let before = store.log_bytes().unwrap();
            store.write(&v, &rows).unwrap();
            appended += store.log_bytes().unwrap().saturating_sub(before);
            // Late rows: ignored now, and must stay ignored after compaction.
            store.write(&v, &[row("c0", round - 1, -1.0)]).unwrap();
        }
        store
            .write(
                &sales,
                &(0..5)
                    .map(|i| PushRow {
                        key: sku(i),
                        event_time_micros: 7,
                        values: vec![(
                            "units".into(),
                            Some(Value::Float32List(vec![i as f32, 1.5])),
                        )],
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert!(
            store.log_bytes().unwrap() < 64 << 10,
            "the log stays near its live size: {} bytes",
            store.log_bytes().unwrap()
        );
        assert!(
            appended > 128 << 10,
            "{appended} bytes were appended in all"
        );
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.len("activity").unwrap(), 20);
    assert_eq!(
        (
            store.newest_event_micros("activity").unwrap(),
            store.newest_event_micros("sales").unwrap(),
            store.newest_event_micros("returns").unwrap()
        ),
        (Some(299), Some(7), None),
        "each view's freshness survives compaction and replay"
    );
    let got = store
        .read(
            &v,
            &[vec!["c0".into()], vec!["c19".into()]],
            &["orders_90d", "segment", "vip"],
            299,
        )
        .unwrap();
    assert_eq!(got[0][0], (Some(Value::Float32(299.0)), Status::Present));
    assert_eq!(
        got[1][1],
        (Some(Value::String("s299".into())), Status::Present)
    );
    assert_eq!(got[0][2], (None, Status::Missing), "nulls stay null");
    let units = store
        .read(&sales, &[sku(3)], &["units", "price"], 7)
        .unwrap();
    assert_eq!(
        units[0],
        vec![
            (Some(Value::Float32List(vec![3.0, 1.5])), Status::Present),
            (None, Status::Missing)
        ]
    );
    // Compacting again by hand, then writing on, still replays the same.
    store.compact().unwrap();
    store.write(&v, &[row("c0", 300, 42.0)]).unwrap();
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let got = store
        .read(
            &v,
            &[vec!["c0".into()], vec!["c5".into()]],
            &["orders_90d"],
            300,
        )
        .unwrap();
    assert_eq!(got[0][0].0, Some(Value::Float32(42.0)));
    assert_eq!(got[1][0].0, Some(Value::Float32(299.0)));
}
