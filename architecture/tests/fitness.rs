//! The structure's rules, held against the workspace's own sources (docs/ARCHITECTURE.md
//! explains them): no import circles between the modules of a crate, the lower crates
//! never depend on the upper ones, no file of code grows past a few hundred lines, and
//! the typed APIs (`server/src/api/`) name no wire type and place no work.
//! The tests at the end prove the checks can fail: a circle added on purpose is caught
//! and named.

use std::path::{Path, PathBuf};

use mercator_architecture::{
    Graph, names_used, non_test_code, non_test_lines, paths, rust_files, workspace_dependencies,
};

/// The workspace's crates, by folder.
const CRATES: [&str; 8] = [
    "proto",
    "registry",
    "runtime",
    "feature-store",
    "streams",
    "server",
    "benches",
    "architecture",
];

/// Longest file of code allowed (its tests below `#[cfg(test)]` not counted).
const MAX_LINES: usize = 500;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn no_crate_has_an_import_circle() {
    let mut found = Vec::new();
    for krate in CRATES {
        let graph = Graph::read(&root().join(krate).join("src")).expect("read sources");
        assert!(!graph.modules.is_empty(), "{krate} has no modules");
        for circle in graph.circles() {
            found.push(format!("{krate}: {circle}"));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.concat());
}

#[test]
fn lower_crates_do_not_depend_on_upper_ones() {
    // Each crate and the workspace crates it must never depend on (in any table: a
    // dev-dependency compiles it into the crate's tests and shows in `cargo tree`).
    let rules: [(&str, &[&str]); 5] = [
        (
            "proto",
            &[
                "mercator-registry",
                "mercator-runtime",
                "mercator-features",
                "mercator-server",
            ],
        ),
        (
            "registry",
            &["mercator-runtime", "mercator-server", "mercator-features"],
        ),
        (
            "feature-store",
            &["mercator-runtime", "mercator-server", "mercator-registry"],
        ),
        (
            "runtime",
            &["mercator-server", "mercator-registry", "mercator-features"],
        ),
        // The streams crate knows Kafka, not what a message becomes: it builds beside
        // the feature store, not after it.
        (
            "streams",
            &[
                "mercator-proto",
                "mercator-registry",
                "mercator-runtime",
                "mercator-features",
                "mercator-server",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (krate, forbidden) in rules {
        let toml = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("toml");
        for dep in workspace_dependencies(&toml) {
            if forbidden.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_file_of_code_is_over_the_limit() {
    let mut long = Vec::new();
    for krate in CRATES {
        for file in rust_files(&root().join(krate).join("src")).expect("list") {
            let text = std::fs::read_to_string(&file).expect("read");
            let n = non_test_lines(&text);
            if n > MAX_LINES {
                long.push(format!("{} has {n} lines of code", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// What `server/src/api/` may not name: the wire (generated protobuf, tonic), and the
/// blocking pool (prediction work is placed by `serving/`; model loading and drift
/// evaluation keep their own pools elsewhere).
const NOT_IN_API: [&str; 3] = ["mercator_proto", "tonic", "spawn_blocking"];

/// The files under `server/src/api/` that name what the typed APIs may not.
fn api_violations(api: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(api).expect("list api/") {
        let text = std::fs::read_to_string(&file).expect("read");
        for name in names_used(&text, &NOT_IN_API) {
            found.push(format!("{} names {name}", file.display()));
        }
    }
    found
}

#[test]
fn the_typed_apis_speak_domain_types_and_place_no_work() {
    let found = api_violations(&root().join("server/src/api"));
    assert!(
        found.is_empty(),
        "server/src/api/ converts nothing and places nothing (grpc/ converts, serving/ \
         places):\n{}",
        found.join("\n")
    );
}

#[test]
fn a_wire_type_or_a_blocking_call_planted_in_api_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = dir.path();
    std::fs::write(
        api.join("wire.rs"),
        "use mercator_proto::v1 as pb;\npub fn f(s: tonic::Status) {}\n",
    )
    .expect("write");
    std::fs::write(
        api.join("blocking.rs"),
        "pub async fn g() { tokio::task::spawn_blocking(|| 1).await; }\n",
    )
    .expect("write");
    // Only in a comment, a string or the tests: not a use.
    std::fs::write(
        api.join("clean.rs"),
        "// tonic and spawn_blocking, said\npub const S: &str = \"mercator_proto\";\n\
         #[cfg(test)]\nmod tests { use tonic::Code; }\n",
    )
    .expect("write");
    let mut found = api_violations(api);
    found.sort();
    let names: Vec<&str> = found
        .iter()
        .map(|f| f.rsplit(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["spawn_blocking", "mercator_proto", "tonic"],
        "{found:?}"
    );
}

#[test]
fn only_a_test_module_ends_the_code() {
    let text =
        "fn a() {}\n#[cfg(test)]\npub(crate) use x::y;\nfn b() {}\n#[cfg(test)]\nmod tests {}\n";
    assert_eq!(non_test_lines(text), 4);
    assert!(non_test_code(text).contains("fn b"));
    assert_eq!(non_test_lines("fn a() {}\n#[cfg(test)] mod t {}\n"), 1);
}

/// Writes a crate of `files` (path under `src/`, text) into a fresh folder.
fn fake_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join("src").join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

#[test]
fn a_circle_added_on_purpose_is_caught_and_named() {
    // a → b → c::d → a, the middle arrow behind c's re-export of d's `G`.
    let dir = fake_crate(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a.rs", "use crate::b::Thing;\n"),
        (
            "b.rs",
            "pub struct Thing;\npub fn f() { super::c::G::new() }\n",
        ),
        ("c/mod.rs", "mod d;\npub use d::G;\n"),
        (
            "c/d.rs",
            "use crate::{x::y, a::{self, Other}};\npub struct G;\n",
        ),
    ]);
    let circles = Graph::read(&dir.path().join("src"))
        .expect("read")
        .circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert_eq!(circles[0].modules, ["a", "b", "c::d"]);
    let text = circles[0].to_string();
    for edge in [
        "a uses b (crate::b::Thing)",
        "b uses c::d (super::c::G::new)",
        "c::d uses a (crate::a)",
    ] {
        assert!(text.contains(edge), "{edge}: {text}");
    }
    // Tests, comments and strings do not count, and a parent re-exporting its child is
    // no circle.
    let dir = fake_crate(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::X; // crate::b\n"),
        ("b/mod.rs", "mod w;\npub use w::X;\n"),
        (
            "b/w.rs",
            "pub struct X;\nconst S: &str = \"crate::a::Y\";\n/* crate::a */\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        ),
    ]);
    let circles = Graph::read(&dir.path().join("src"))
        .expect("read")
        .circles();
    assert!(circles.is_empty(), "{circles:?}");
}

#[test]
fn a_circle_added_to_the_real_server_is_caught() {
    // The server as it is, plus one use that points up: the metric names (a leaf) using
    // the churn API, which reaches them through the serving core.
    let src = root().join("server").join("src");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in rust_files(&src).expect("list") {
        let to = dir.path().join(file.strip_prefix(&src).expect("under src"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &to).expect("copy");
    }
    let names = dir.path().join("monitor").join("names.rs");
    let text = std::fs::read_to_string(&names).expect("read") + "\nuse crate::api::churn::SCORE;\n";
    std::fs::write(&names, text).expect("write");
    let circles = Graph::read(dir.path()).expect("read").circles();
    let all: String = circles.iter().map(ToString::to_string).collect();
    assert_eq!(circles.len(), 1, "{all}");
    for module in ["monitor::names", "api::churn"] {
        assert!(circles[0].modules.iter().any(|m| m == module), "{all}");
    }
    assert!(
        all.contains("monitor::names uses api::churn (crate::api::churn::SCORE)"),
        "{all}"
    );
}

#[test]
fn upward_dependencies_are_read_from_every_table() {
    let toml = "[package]\nname = \"x\"\n[dependencies]\nmercator-proto.workspace = true\n\
                serde = \"1\"\n[dev-dependencies]\nmercator-runtime = { path = \"../runtime\" }\n\
                [target.'cfg(unix)'.build-dependencies]\nmercator-server.workspace = true\n";
    let deps: Vec<String> = workspace_dependencies(toml).into_iter().collect();
    assert_eq!(
        deps,
        ["mercator-proto", "mercator-runtime", "mercator-server"]
    );
}

#[test]
fn use_trees_expand_and_literals_hide() {
    let code = non_test_code(
        "use crate::{a::{b, c::D}, e as f};\nuse super::*;\nfn x<'a>(c: char) { let _ = 'x'; \
         let s = r#\"crate::z\"#; crate::g::h(); Vec::<u8>::new(); }\n",
    );
    let found: Vec<String> = paths(&code).iter().map(|p| p.segments.join("::")).collect();
    assert_eq!(
        found,
        [
            "crate::a::b",
            "crate::a::c::D",
            "crate::e",
            "super::*",
            "crate::g::h"
        ]
    );
}
