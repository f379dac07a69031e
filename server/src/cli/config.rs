//! `mercator config show`: the effective configuration and where each value came from.

use clap::{Args, Subcommand};

use crate::config::Setting;

/// `mercator config`.
#[derive(Debug, Args)]
pub struct ConfigCommandArgs {
    /// Configuration sources.
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `mercator config …` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every key with its effective value (what `mercator serve` would use with the
    /// same file, environment and `--data-dir`) and its source: default, the file, an
    /// environment variable or a flag. Passwords in URLs are masked.
    Show {
        /// Print JSON: a list of {section, key, value, source}.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `mercator config`.
pub fn run(args: ConfigCommandArgs) -> anyhow::Result<()> {
    let loaded = args.config.layered(Vec::new())?;
    loaded.warn();
    let settings = loaded.settings()?;
    match args.command {
        ConfigCommand::Show { json: true } => {
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
        ConfigCommand::Show { json: false } => print!("{}", as_toml(&settings)),
    }
    Ok(())
}

/// The settings as a TOML file that `--config` would accept, each value's source in a
/// comment beside it.
fn as_toml(settings: &[Setting]) -> String {
    let width = settings
        .iter()
        .map(|s| s.key.len() + 3 + s.value.to_string().len())
        .max()
        .unwrap_or(0);
    let mut out =
        String::from("# Effective configuration; lowest first: default < file < env < flag.\n");
    let mut section = "";
    for setting in settings {
        if setting.section != section {
            section = &setting.section;
            out.push_str(&format!("\n[{section}]\n"));
        }
        // As TOML's inline values (tables such as `[streams] sasl` are `{ k = v }`).
        let value = toml::Value::try_from(&setting.value)
            .map_or_else(|_| setting.value.to_string(), |v| v.to_string());
        let line = format!("{} = {value}", setting.key);
        out.push_str(&format!("{line:width$}  # {}\n", setting.source));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_toml_reads_back_as_the_same_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "[models]\nserve_aliases = [\"champion\", \"challenger\"]\n[server]\ninstance_name = \"a \\\"quoted\\\" name\"\n",
        )
        .expect("write");
        let loaded = crate::config::Config::load(Some(&file), Vec::new(), &[]).expect("load");
        let shown = as_toml(&loaded.settings().expect("settings"));
        assert!(shown.contains("[models]\n"), "{shown}");
        let again = dir.path().join("again.toml");
        std::fs::write(&again, &shown).expect("write");
        let reloaded = crate::config::Config::load(Some(&again), Vec::new(), &[]).expect("reload");
        assert_eq!(reloaded.config, loaded.config);
        assert!(reloaded.warnings.is_empty(), "{:?}", reloaded.warnings);
    }
}
