//! Embeds the migrations: for each backend, `$OUT_DIR/migrations_<backend>.rs` lists every
//! `migrations/<backend>/NNNN_description.sql` as `(version, description, sql)`, the SQL
//! included from the file. `store/migrations.rs` hands them to sqlx's migrator as sqlx's
//! own `migrate!` would (same versions, descriptions and checksums, so databases made
//! before keep their history), without the `macros` feature, whose proc-macro would build
//! sqlx, its drivers and SQLite a second time for the build host.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    for backend in ["sqlite", "postgres"] {
        let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"))
            .join("migrations")
            .join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("migrations folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        let mut code = String::from("&[\n");
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name");
            let (version, rest) = name.split_once('_').expect("NNNN_description.sql");
            let version: i64 = version.parse().expect("an integer version prefix");
            let description = rest.trim_end_matches(".sql").replace('_', " ");
            writeln!(
                code,
                "    ({version}, {description:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .expect("write");
        }
        code.push(']');
        std::fs::write(
            Path::new(&out).join(format!("migrations_{backend}.rs")),
            code,
        )
        .expect("write migrations");
    }
}
