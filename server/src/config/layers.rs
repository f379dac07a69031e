//! Reading the configuration's layers (defaults, the TOML file, the environment, flags),
//! the old flat key names, and where each effective value came from.
//!
//! The set of keys is read from `Config::default()` serialised, so a field added to a
//! section is a key in TOML, in the environment and in `mercator config show` with no list
//! to update. Each layer is merged into figment as its own provider (one per environment
//! variable or flag), so figment's metadata names the exact source of every value.
//!
//! Old flat names (`grpc_addr` in TOML, `MERCATOR_GRPC_ADDR`) keep working for one
//! release, with a warning that names the new key. They are not listed either: an old name
//! is `<section>_<key>` or `<key>` for exactly one key (`grpc_addr` is `grpc.addr`,
//! `max_batch_size` is `limits.max_batch_size`). Delete `Keys::renamed` to retire them.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{Config, ConfigError};

/// What every environment variable of ours starts with.
const ENV_PREFIX: &str = "MERCATOR_";

/// A command-line flag that sets a key, e.g. `--grpc-addr` for `grpc.addr`.
#[derive(Debug, Clone)]
pub struct Flag {
    /// The key, as `section.key`.
    pub key: &'static str,
    /// The flag as typed, for `config show`.
    pub name: &'static str,
    /// Its value, parsed like an environment variable's.
    pub value: String,
}

/// A loaded configuration, what loading noticed, and where each value came from.
#[derive(Debug)]
pub struct Loaded {
    /// The checked configuration.
    pub config: Config,
    /// Old names and unknown keys met on the way, for the log (names only, never values).
    pub warnings: Vec<String>,
    figment: Figment,
}

/// One effective value, for `mercator config show`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting {
    /// Its TOML section.
    pub section: String,
    /// Its key in that section.
    pub key: String,
    /// Its value, with any password in a URL masked.
    pub value: serde_json::Value,
    /// `default`, `file <path>`, `env <VAR>` or `flag <--flag>`.
    pub source: String,
}

impl Config {
    /// Loads the layers. `env` is the process environment (injected so tests need not
    /// touch the real one) and `flags` the keys set on the command line.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[Flag],
    ) -> Result<Loaded, ConfigError> {
        let keys = Keys::of_defaults()?;
        let mut warnings = Vec::new();
        let mut figment = Figment::new().merge(Layer::new("default".into(), keys.0.clone()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            let source = format!("file {}", file.display());
            let mut data = Toml::file(file)
                .data()
                .map_err(|e| ConfigError(format!("{source}: {e}")))?;
            let dict = data.remove(&Profile::Default).unwrap_or_default();
            let dict = keys.sectioned(dict, &source, &mut warnings);
            figment = figment.merge(Layer::new(source, dict));
        }
        for layer in keys.env_layers(env, &mut warnings) {
            figment = figment.merge(layer);
        }
        for flag in flags {
            let Some((section, key)) = flag.key.split_once('.') else {
                return Err(ConfigError(format!("flag {}: no section", flag.name)));
            };
            let value = keys.parse(section, key, &flag.value);
            let source = format!("flag {}", flag.name);
            figment = figment.merge(Layer::single(source, section, key, value));
        }
        let config: Config = figment.extract().map_err(extraction_error)?;
        config.validate()?;
        Ok(Loaded {
            config,
            warnings,
            figment,
        })
    }
}

impl Loaded {
    /// Logs the warnings (call once logging is set up).
    pub fn warn(&self) {
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
    }

    /// Every key with its effective value and source, section by section.
    pub fn settings(&self) -> Result<Vec<Setting>, ConfigError> {
        let tree = serde_json::to_value(&self.config).map_err(|e| ConfigError(e.to_string()))?;
        let mut settings = Vec::new();
        for (section, keys) in tree.as_object().into_iter().flatten() {
            for (key, value) in keys.as_object().into_iter().flatten() {
                let source = self
                    .figment
                    .find_metadata(&format!("{section}.{key}"))
                    .map_or_else(|| "default".to_string(), |m| m.name.to_string());
                settings.push(Setting {
                    section: section.clone(),
                    key: key.clone(),
                    value: masked(value.clone()),
                    source,
                });
            }
        }
        Ok(settings)
    }
}

/// Figment's errors, each as `section.key: what is wrong (source)`.
fn extraction_error(errors: figment::Error) -> ConfigError {
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" ({})", m.name))
                .unwrap_or_default();
            format!("{}: {}{source}", e.path.join("."), e.kind)
        })
        .collect();
    ConfigError(lines.join("; "))
}

/// A URL's password replaced by `****` (a database or Redis URL may carry one).
fn masked(value: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::String(text) = &value else {
        return value;
    };
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = url.set_password(Some("****"));
            serde_json::Value::String(url.to_string())
        }
        _ => value,
    }
}

/// The sections and their keys, with their defaults: `Config::default()` serialised.
struct Keys(Dict);

impl Keys {
    fn of_defaults() -> Result<Keys, ConfigError> {
        Value::serialize(Config::default())
            .ok()
            .and_then(Value::into_dict)
            .map(Keys)
            .ok_or_else(|| ConfigError("the defaults do not serialise to a table".into()))
    }

    fn default_of(&self, section: &str, key: &str) -> Option<&Value> {
        self.0.get(section)?.as_dict()?.get(key)
    }

    /// The new key an old flat name stands for: `<section>_<key>` or `<key>`, if exactly
    /// one key matches.
    fn renamed(&self, old: &str) -> Option<(String, String)> {
        let mut matches = self.0.iter().flat_map(|(section, keys)| {
            keys.as_dict()
                .into_iter()
                .flat_map(|keys| keys.keys())
                .filter(move |key| old == key.as_str() || old == format!("{section}_{key}"))
                .map(move |key| (section.clone(), key.clone()))
        });
        let found = matches.next()?;
        matches.next().is_none().then_some(found)
    }

    /// Text (from the environment or a flag) as a value of the key's type: lists are
    /// comma-separated, strings stay strings (`007` is a name), anything else is parsed
    /// the way figment parses environment values, and extraction names a bad one.
    fn parse(&self, section: &str, key: &str, text: &str) -> Value {
        match self.default_of(section, key) {
            Some(Value::Array(..)) => Value::from(
                text.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>(),
            ),
            Some(Value::String(..)) => Value::from(text.to_string()),
            _ => text
                .parse()
                .unwrap_or_else(|never: std::convert::Infallible| match never {}),
        }
    }

    /// A TOML file's table with old flat names moved into their sections (a key set both
    /// ways keeps the new one); unknown keys are reported and dropped.
    fn sectioned(&self, file: Dict, source: &str, warnings: &mut Vec<String>) -> Dict {
        let mut out = Dict::new();
        let mut old = Vec::new();
        for (name, value) in file {
            match (self.0.get(&name).and_then(Value::as_dict), value) {
                (Some(known), Value::Dict(tag, mut given)) => {
                    given.retain(|key, _| {
                        let ok = known.contains_key(key);
                        if !ok {
                            warnings
                                .push(format!("{source}: [{name}] has no key `{key}`; ignored"));
                        }
                        ok
                    });
                    out.insert(name, Value::Dict(tag, given));
                }
                // A section given as something else: extraction names it.
                (Some(_), value) => {
                    out.insert(name, value);
                }
                (None, value) => match self.renamed(&name) {
                    Some((section, key)) => {
                        warnings.push(format!(
                            "{source}: `{name}` is deprecated; use `{key}` under [{section}]"
                        ));
                        old.push((section, key, value));
                    }
                    None => warnings.push(format!("{source}: unknown key `{name}`; ignored")),
                },
            }
        }
        for (section, key, value) in old {
            let entry = out
                .entry(section)
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, keys) = entry {
                keys.entry(key).or_insert(value);
            }
        }
        out
    }

    /// One layer per variable: old flat names first, so that a new name set too wins.
    fn env_layers(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
        warnings: &mut Vec<String>,
    ) -> Vec<Layer> {
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(var, _)| var.starts_with(ENV_PREFIX))
            .collect();
        let mut old = Vec::new();
        let mut new = Vec::new();
        for (var, text) in &env {
            let name = var[ENV_PREFIX.len()..].to_ascii_lowercase();
            let (section, key) = match name.split_once("__") {
                Some((section, key)) if self.default_of(section, key).is_some() => {
                    (section.to_string(), key.to_string())
                }
                Some(_) => {
                    warnings.push(format!("{var} names no configuration key; ignored"));
                    continue;
                }
                // Not ours (MERCATOR_CONFIG, MERCATOR_SERVER, …) unless an old name.
                None => match self.renamed(&name) {
                    Some((section, key)) => {
                        warnings.push(format!(
                            "{var} is deprecated; use {ENV_PREFIX}{}__{}",
                            section.to_ascii_uppercase(),
                            key.to_ascii_uppercase()
                        ));
                        let value = self.parse(&section, &key, text);
                        old.push(Layer::single(format!("env {var}"), &section, &key, value));
                        continue;
                    }
                    None => continue,
                },
            };
            let value = self.parse(&section, &key, text);
            new.push(Layer::single(format!("env {var}"), &section, &key, value));
        }
        old.into_iter().chain(new).collect()
    }
}

/// One source of values, named for `config show`.
struct Layer {
    name: String,
    dict: Dict,
}

impl Layer {
    fn new(name: String, dict: Dict) -> Layer {
        Layer { name, dict }
    }

    fn single(name: String, section: &str, key: &str, value: Value) -> Layer {
        let mut keys = Dict::new();
        keys.insert(key.to_string(), value);
        let mut dict = Dict::new();
        dict.insert(section.to_string(), Value::from(keys));
        Layer { name, dict }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn source_of(loaded: &Loaded, section: &str, key: &str) -> String {
        let settings = loaded.settings().expect("settings");
        let setting = settings
            .iter()
            .find(|s| s.section == section && s.key == key)
            .expect("a setting");
        setting.source.clone()
    }

    #[test]
    fn layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "grpc_addr = \"127.0.0.1:9001\"\nmax_batch_size = 10\nmetrics_addr = \"127.0.0.1:9002\"\n").unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("MERCATOR_MAX_BATCH_SIZE", "20"),
                ("MERCATOR_SERVE_ALIASES", "champion, challenger"),
                ("OTHER", "x"),
            ]),
            &[],
        )
        .unwrap()
        .config;
        assert_eq!(c.grpc.addr.port(), 9001);
        assert_eq!(c.limits.max_batch_size, 20);
        assert_eq!(c.models.serve_aliases, vec!["champion", "challenger"]);
        let flags = [Flag {
            key: "metrics.addr",
            name: "--metrics-addr",
            value: "127.0.0.1:9100".into(),
        }];
        let c = Config::load(
            Some(&file),
            env(&[("MERCATOR_METRICS_ADDR", "127.0.0.1:9003")]),
            &flags,
        )
        .unwrap()
        .config;
        assert_eq!(c.metrics.addr.port(), 9100);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::load(None, env(&[("MERCATOR_MAX_BATCH_SIZE", "0")]), &[]).is_err());
        assert!(Config::load(None, env(&[("MERCATOR_GRPC_ADDR", "nowhere")]), &[]).is_err());
        assert!(Config::load(None, env(&[("MERCATOR_LOG_FORMAT", "xml")]), &[]).is_err());
        assert!(Config::load(Some(Path::new("/no/such.toml")), env(&[]), &[]).is_err());
        for bad in ["churn", "churn@x", "@3", "churn@0"] {
            let err =
                Config::load(None, env(&[("MERCATOR_PINNED_VERSIONS", bad)]), &[]).expect_err(bad);
            assert!(err.to_string().contains("model@version"), "{bad}: {err}");
        }
        let c = Config::load(
            None,
            env(&[("MERCATOR_PINNED_VERSIONS", "churn@3, intent@1")]),
            &[],
        )
        .expect("pinned")
        .config;
        assert_eq!(
            c.models.pinned().expect("parsed"),
            [("churn".to_string(), 3), ("intent".to_string(), 1)]
        );
        for (bad, needle) in [
            ("{intent={max_queue_size=0}}", "max_queue_size"),
            (
                "{intent={max_queue_delay_microseconds=60000000}}",
                "at most 10 s",
            ),
            (
                "{intent={preferred_batch_size=[0]}}",
                "preferred_batch_size 0",
            ),
            (
                "{intent={max_batch_size=8,preferred_batch_size=[16]}}",
                "preferred_batch_size 16",
            ),
        ] {
            let err = Config::load(None, env(&[("MERCATOR_SERVING__BATCHING", bad)]), &[])
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("serving.batching.intent") && err.contains(needle),
                "{bad}: {err}"
            );
        }
        let ok = Config::load(
            None,
            env(&[("MERCATOR_SERVING__BATCHING", "{intent={enabled=false}}")]),
            &[],
        )
        .expect("batching override");
        assert_eq!(ok.config.serving.batching["intent"].enabled, Some(false));
    }

    #[test]
    fn sections_env_and_flags_with_their_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "[grpc]\naddr = \"127.0.0.1:9001\"\n[limits]\nmax_batch_size = 10\nmax_in_flight = 7\n[drift]\nwindow_secs = 60\n",
        )
        .unwrap();
        let loaded = Config::load(
            Some(&file),
            env(&[
                ("MERCATOR_LIMITS__MAX_BATCH_SIZE", "20"),
                ("MERCATOR_MODELS__SERVE_ALIASES", "champion,challenger"),
                ("MERCATOR_SERVER__INSTANCE_NAME", "007"),
            ]),
            &[Flag {
                key: "server.data_dir",
                name: "--data-dir",
                value: "/srv/m".into(),
            }],
        )
        .expect("load");
        let c = &loaded.config;
        assert_eq!(c.grpc.addr.port(), 9001);
        assert_eq!(c.limits.max_batch_size, 20, "env beats the file");
        assert_eq!(c.limits.max_in_flight, 7);
        assert_eq!(
            c.drift.window_secs, 60.0,
            "an integer is accepted for seconds"
        );
        assert_eq!(c.models.serve_aliases, ["champion", "challenger"]);
        assert_eq!(c.server.instance_name, "007", "a string key stays a string");
        assert_eq!(c.server.data_dir, Path::new("/srv/m"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let in_file = format!("file {}", file.display());
        assert_eq!(source_of(&loaded, "grpc", "addr"), in_file);
        assert_eq!(source_of(&loaded, "limits", "max_in_flight"), in_file);
        assert_eq!(
            source_of(&loaded, "limits", "max_batch_size"),
            "env MERCATOR_LIMITS__MAX_BATCH_SIZE"
        );
        assert_eq!(source_of(&loaded, "server", "data_dir"), "flag --data-dir");
        assert_eq!(source_of(&loaded, "metrics", "addr"), "default");
        let settings = loaded.settings().expect("settings");
        let defaults = serde_json::to_value(Config::default()).expect("json");
        let count: usize = defaults
            .as_object()
            .expect("sections")
            .values()
            .map(|keys| keys.as_object().expect("keys").len())
            .sum();
        assert_eq!(settings.len(), count, "every key is shown once");
    }

    #[test]
    fn old_names_work_with_a_warning_naming_the_new_key() {
        // Every flat name of the previous release, with the key it now sets.
        let renamed = [
            ("data_dir", "server.data_dir"),
            ("grpc_addr", "grpc.addr"),
            ("metrics_addr", "metrics.addr"),
            ("registry_url", "registry.url"),
            ("artifacts_url", "artifacts.url"),
            ("online_store", "features.online_store"),
            ("offline_store", "features.offline_store"),
            ("max_message_bytes", "limits.max_message_bytes"),
            ("max_batch_size", "limits.max_batch_size"),
            ("max_in_flight", "limits.max_in_flight"),
            ("offload_min_rows", "serving.offload_min_rows"),
            ("max_shadow_in_flight", "serving.max_shadow_in_flight"),
            ("drift_window_samples", "drift.window_samples"),
            ("drift_window_secs", "drift.window_secs"),
            ("drift_min_samples", "drift.min_samples"),
            ("drift_interval_secs", "drift.interval_secs"),
            ("max_horizon_days", "limits.max_horizon_days"),
            ("max_batch_series", "limits.max_batch_series"),
            ("instance_name", "server.instance_name"),
            ("keep_versions", "models.keep_versions"),
            ("pinned_versions", "models.pinned_versions"),
            ("serve_aliases", "models.serve_aliases"),
            ("poll_interval_secs", "registry.poll_interval_secs"),
            ("shutdown_grace_secs", "server.shutdown_grace_secs"),
            ("log_format", "server.log_format"),
        ];
        let keys = Keys::of_defaults().expect("keys");
        for (old, new) in renamed {
            let (section, key) = keys.renamed(old).expect(old);
            assert_eq!(format!("{section}.{key}"), new);
        }
        for not_ours in [
            "config",
            "server",
            "python",
            "url",
            "addr",
            "test_postgres_url",
        ] {
            assert_eq!(keys.renamed(not_ours), None, "{not_ours}");
        }

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "drift_window_secs = 60.0\nmax_in_flight = 3\nmystery = 1\n[limits]\nmax_in_flight = 5\nmax_inflight = 9\n",
        )
        .unwrap();
        let loaded = Config::load(
            Some(&file),
            env(&[
                ("MERCATOR_GRPC_ADDR", "127.0.0.1:9001"),
                ("MERCATOR_METRICS_ADDR", "127.0.0.1:9002"),
                ("MERCATOR_METRICS__ADDR", "127.0.0.1:9003"),
                ("MERCATOR_GRPC__ADR", "x"),
                ("MERCATOR_SERVER", "http://elsewhere:8001"),
                ("MERCATOR_CONFIG", "other.toml"),
            ]),
            &[],
        )
        .expect("load");
        let c = &loaded.config;
        assert_eq!(c.drift.window_secs, 60.0);
        assert_eq!(
            c.limits.max_in_flight, 5,
            "the new key wins in the same file"
        );
        assert_eq!(c.grpc.addr.port(), 9001);
        assert_eq!(c.metrics.addr.port(), 9003, "the new variable wins");
        let warnings = loaded.warnings.join("\n");
        for needle in [
            "`drift_window_secs` is deprecated; use `window_secs` under [drift]",
            "`max_in_flight` is deprecated; use `max_in_flight` under [limits]",
            "unknown key `mystery`",
            "[limits] has no key `max_inflight`",
            "MERCATOR_GRPC_ADDR is deprecated; use MERCATOR_GRPC__ADDR",
            "MERCATOR_METRICS_ADDR is deprecated; use MERCATOR_METRICS__ADDR",
            "MERCATOR_GRPC__ADR names no configuration key",
        ] {
            assert!(warnings.contains(needle), "{needle} not in:\n{warnings}");
        }
        assert_eq!(loaded.warnings.len(), 7, "{warnings}");
        assert_eq!(source_of(&loaded, "grpc", "addr"), "env MERCATOR_GRPC_ADDR");
    }

    #[test]
    fn bad_layers_name_the_key_and_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "[grpc]\naddr = 5\n").unwrap();
        let err = Config::load(Some(&file), env(&[]), &[]).expect_err("bad addr");
        assert!(err.to_string().contains("grpc.addr"), "{err}");
        std::fs::write(&file, "[grpc\naddr = 5\n").unwrap();
        let err = Config::load(Some(&file), env(&[]), &[]).expect_err("bad toml");
        assert!(err.to_string().contains("m.toml"), "{err}");
        let err = Config::load(
            None,
            env(&[("MERCATOR_LIMITS__MAX_IN_FLIGHT", "many")]),
            &[],
        )
        .expect_err("bad number");
        assert!(
            err.to_string().contains("MERCATOR_LIMITS__MAX_IN_FLIGHT"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[("MERCATOR_FEATURES__ONLINE_STORE", "mongo")]),
            &[],
        )
        .expect_err("bad backend");
        assert!(err.to_string().contains("features.online_store"), "{err}");
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        let loaded = Config::load(
            None,
            env(&[(
                "MERCATOR_REGISTRY__URL",
                "postgres://mercator:s3cret@db:5432/registry",
            )]),
            &[],
        )
        .expect("load");
        assert_eq!(
            loaded.config.registry.url,
            "postgres://mercator:s3cret@db:5432/registry"
        );
        let shown = serde_json::to_string(&loaded.settings().expect("settings")).expect("json");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://mercator:****@db:5432/registry"),
            "{shown}"
        );
    }
}
