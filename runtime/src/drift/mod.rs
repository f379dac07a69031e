//! Drift statistics: how live inputs and predictions compare with what a version was trained on.
//!
//! [`columns`] names what is profiled, from the manifest; [`profile`] is the training
//! reference a version ships as `profile.json`; [`stats`] holds the statistics (PSI, KS,
//! Jensen–Shannon distance), written to match a numpy reference to 1e-9.

pub mod columns;
pub mod profile;
pub mod stats;

pub use columns::Columns;
pub use profile::{PROFILE_FILE, Profile, Values};

#[cfg(test)]
mod tests {
    //! The numpy reference (`runtime/tests/fixtures/drift/drift_reference.py`) on its
    //! committed samples: the profile and every score must match to 1e-9.

    use super::profile::{Distribution, Reference, Values};

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/drift");
    const NUMERIC: [&str; 3] = ["normal", "discrete", "skewed"];

    fn read(file: &str) -> Vec<(String, Values)> {
        let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("sample");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        header
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let cells = rows.iter().map(|r| r[j]);
                let values = if NUMERIC.contains(name) {
                    Values::Numeric(
                        cells
                            .map(|c| {
                                if c.is_empty() {
                                    f64::NAN
                                } else {
                                    c.parse().expect("number")
                                }
                            })
                            .collect(),
                    )
                } else {
                    Values::Categorical(
                        cells
                            .map(|c| (!c.is_empty()).then(|| c.to_string()))
                            .collect(),
                    )
                };
                (name.to_string(), values)
            })
            .collect()
    }

    fn close(what: &str, got: f64, want: &serde_json::Value) {
        let want = want.as_f64().unwrap_or_else(|| panic!("{what}: {want}"));
        assert!((got - want).abs() <= 1e-9, "{what}: {got} vs numpy {want}");
    }

    fn close_all(what: &str, got: &[f64], want: &serde_json::Value) {
        let want = want.as_array().unwrap_or_else(|| panic!("{what}"));
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            close(&format!("{what}[{i}]"), *g, w);
        }
    }

    #[test]
    fn profile_and_scores_equal_the_numpy_reference() {
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{DIR}/expected.json")).expect("expected"),
        )
        .expect("json");
        let epsilon = expected["epsilon"].as_f64().expect("epsilon");
        let live = read("live.csv");
        for (name, values) in read("reference.csv") {
            let want = &expected["profile"][&name];
            let r = Reference::build(&name, &values, 10);
            close(
                &format!("{name}.null_rate"),
                r.null_rate,
                &want["null_rate"],
            );
            match &r.distribution {
                Distribution::Numeric {
                    edges,
                    shares,
                    sample,
                } => {
                    close_all(&format!("{name}.edges"), edges, &want["edges"]);
                    close_all(&format!("{name}.shares"), shares, &want["shares"]);
                    close_all(&format!("{name}.sample"), sample, &want["sample"]);
                }
                Distribution::Categorical { categories, shares } => {
                    let names: Vec<&str> = want["categories"]
                        .as_array()
                        .expect("categories")
                        .iter()
                        .filter_map(|c| c.as_str())
                        .collect();
                    assert_eq!(categories, &names, "{name}.categories");
                    close_all(&format!("{name}.shares"), shares, &want["shares"]);
                }
            }
            let (_, window) = live.iter().find(|(n, _)| *n == name).expect("live column");
            let s = r.compare(window, epsilon);
            let want = &expected["scores"][&name];
            assert_eq!(Some(s.samples), want["samples"].as_u64(), "{name}.samples");
            close(
                &format!("{name}.null_rate_shift"),
                s.null_rate_shift,
                &want["null_rate_shift"],
            );
            for (stat, got) in [("psi", s.psi), ("ks", s.ks), ("js", s.js)] {
                match got {
                    Some(g) => close(&format!("{name}.{stat}"), g, &want[stat]),
                    None => assert!(want[stat].is_null(), "{name}.{stat} missing"),
                }
            }
        }
    }
}
