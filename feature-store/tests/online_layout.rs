//! The embedded store against a model of what it must hold, under random writes:
//! definitions that change a field's type, add and drop fields, rows that leave fields
//! null, older rows arriving late, reopening (replaying the log) and compacting. The
//! store lays rows out by what it has seen (`online/layout.rs`) and rewrites them when
//! that changes; whatever the history, every read must equal the model's.

use std::collections::HashMap;

use mercator_features::online::{EmbeddedStore, PushRow};
use mercator_features::{Definitions, FeatureView, FieldType, Status, Value};
use proptest::prelude::*;

/// Three versions of one view's definition: `a` changes type, fields come and go.
const VERSIONS: [&str; 3] = [
    r#"{ name = "a", type = "float32" }, { name = "b", type = "int64" }, { name = "c", type = "string" }"#,
    r#"{ name = "a", type = "float32" }, { name = "b", type = "float64" }, { name = "d", type = "bool" }, { name = "e", type = "float32_list" }"#,
    r#"{ name = "a", type = "int64" }, { name = "c", type = "string" }, { name = "f", type = "date" }, { name = "g", type = "float32" }"#,
];

fn version(i: usize) -> FeatureView {
    let toml = format!(
        "[[entities]]\nname = \"e\"\njoin_keys = [\"id\"]\n\n[[feature_views]]\nname = \"v\"\nentity = \"e\"\nfields = [{}]\n",
        VERSIONS[i]
    );
    Definitions::from_toml(&toml).expect("definitions").views["v"].clone()
}

fn value_of(field_type: FieldType, seed: u32) -> Value {
    match field_type {
        FieldType::Float32 => Value::Float32(seed as f32 * 0.5 - 3.0),
        FieldType::Float64 => Value::Float64(f64::from(seed) * 0.25),
        FieldType::Int64 => Value::Int64(i64::from(seed) - 7),
        FieldType::String => Value::String("x".repeat(seed as usize % 5)),
        FieldType::Bool => Value::Bool(seed.is_multiple_of(2)),
        FieldType::Float32List => Value::Float32List((0..seed % 4).map(|i| i as f32).collect()),
        FieldType::Date => Value::String(format!("2026-01-{:02}", 1 + seed % 28)),
    }
}

/// A row to write: key number, event time, and per field of the version: `None` not
/// given, `Some(None)` null, `Some(Some(seed))` a value.
type Row = (u8, i64, Vec<Option<Option<u32>>>);

#[derive(Debug, Clone)]
enum Op {
    /// Rows under one version of the definition.
    Write(usize, Vec<Row>),
    Reopen,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let row = (
        0u8..12,
        0i64..6,
        proptest::collection::vec(
            proptest::option::weighted(0.8, proptest::option::weighted(0.8, 0u32..20)),
            4,
        ),
    );
    prop_oneof![
        8 => (0usize..3, proptest::collection::vec(row, 1..8)).prop_map(|(v, rows)| Op::Write(v, rows)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

/// What the store must hold: per key, the newest row's event time and values by name.
type Model = HashMap<String, (i64, HashMap<String, Value>)>;

fn check(store: &EmbeddedStore, model: &Model) -> Result<(), TestCaseError> {
    let keys: Vec<Vec<String>> = (0..12).map(|k| vec![format!("k{k}")]).collect();
    for v in 0..VERSIONS.len() {
        let view = version(v);
        let names: Vec<&str> = view.fields.iter().map(|f| f.name.as_str()).collect();
        let got = store.read(&view, &keys, &names, 0).expect("read");
        for (key, row) in keys.iter().zip(got) {
            for (name, (value, status)) in names.iter().zip(row) {
                let want = model.get(&key[0]).and_then(|(_, values)| values.get(*name));
                prop_assert_eq!(
                    value.as_ref(),
                    want,
                    "{}.{} read under version {}",
                    key[0],
                    name,
                    v
                );
                let want_status = if want.is_some() {
                    Status::Present
                } else {
                    Status::Missing
                };
                prop_assert_eq!(status, want_status);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_equal_the_model_whatever_the_history(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().expect("tempdir");
        // A tiny compaction threshold: the log is also rewritten as writes go.
        let open = || EmbeddedStore::open_with(dir.path(), 4096).expect("open");
        let mut store = open();
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Write(v, rows) => {
                    let view = version(v);
                    let rows: Vec<PushRow> = rows
                        .into_iter()
                        .map(|(key, t, given)| PushRow {
                            key: vec![format!("k{key}")],
                            event_time_micros: t,
                            values: view
                                .fields
                                .iter()
                                .zip(given)
                                .filter_map(|(f, g)| {
                                    g.map(|v| (f.name.clone(), v.map(|s| value_of(f.field_type, s))))
                                })
                                .collect(),
                        })
                        .collect();
                    store.write(&view, &rows).expect("write");
                    for row in rows {
                        let newer = model
                            .get(&row.key[0])
                            .is_none_or(|(t, _)| *t <= row.event_time_micros);
                        if newer {
                            let values = row
                                .values
                                .into_iter()
                                .filter_map(|(name, v)| v.map(|v| (name, v)))
                                .collect();
                            model.insert(row.key[0].clone(), (row.event_time_micros, values));
                        }
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = open();
                }
                Op::Compact => store.compact().expect("compact"),
            }
            check(&store, &model)?;
        }
        drop(store);
        check(&open(), &model)?;
    }
}
