//! `mercator keys …`: API keys for servers that require credentials. Through a server's
//! Registry service (`--server`, with an `admin` key), or straight on the registry
//! database the configuration names, which is how the first key is made.

use clap::{Args, Subcommand};
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};

use super::ConfigArgs;
use super::remote::{Credential, default_actor};
use crate::cli::models::status;

/// `mercator keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Configuration sources (used when no --server is given).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A running server's gRPC URL. Without it the CLI opens the registry itself.
    #[arg(long, env = "MERCATOR_SERVER", global = true)]
    pub server: Option<String>,
    /// The credential sent to the server (it needs the `admin` scope).
    #[command(flatten)]
    pub credential: Credential,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The operation.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Key operations.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it, once: the registry keeps only its hash.
    Create {
        /// The principal's name, recorded as the actor of what the key does.
        name: String,
        /// A scope the key grants; repeatable: infer, features:read, features:write,
        /// models:write, models:promote, outcomes:write, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until the key is refused [default: never].
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key: every server refuses it within `[auth] key_cache_secs`.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// Runs a `mercator keys` command.
pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let actor = default_actor(None);
    let transport = super::models::registry_transport(
        args.server.as_deref(),
        &args.config,
        &args.credential,
        &actor,
    )
    .await?;
    let mut client = RegistryClient::new(transport);
    match args.command {
        KeysCommand::Create {
            name,
            scopes,
            expires_in_days,
        } => {
            let expires_at = expires_in_days.map(|days| {
                let at = chrono::Utc::now() + chrono::Duration::days(i64::from(days));
                prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }
            });
            let created = client
                .create_api_key(pb::CreateApiKeyRequest {
                    name,
                    scopes,
                    expires_at,
                })
                .await
                .map_err(status)?
                .into_inner();
            let key = created.key.unwrap_or_default();
            if args.json {
                let out = serde_json::json!({
                    "name": key.name,
                    "scopes": key.scopes,
                    "secret": created.secret,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                eprintln!(
                    "created key '{}' ({}); it is shown once, keep it secret:",
                    key.name,
                    key.scopes.join(" ")
                );
                println!("{}", created.secret);
            }
        }
        KeysCommand::List => {
            let keys = client
                .list_api_keys(pb::ListApiKeysRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .keys;
            if args.json {
                let out: Vec<_> = keys.iter().map(key_json).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.name.clone(),
                            k.scopes.join(" "),
                            k.created_by.clone(),
                            time(k.created_at.as_ref()),
                            time(k.expires_at.as_ref()),
                            time(k.revoked_at.as_ref()),
                        ]
                    })
                    .collect();
                super::table::print(
                    &[
                        "NAME",
                        "SCOPES",
                        "CREATED BY",
                        "CREATED",
                        "EXPIRES",
                        "REVOKED",
                    ],
                    &rows,
                );
            }
        }
        KeysCommand::Revoke { name } => {
            client
                .revoke_api_key(pb::RevokeApiKeyRequest { name: name.clone() })
                .await
                .map_err(status)?;
            println!("revoked key '{name}'");
        }
    }
    Ok(())
}

fn key_json(k: &pb::ApiKey) -> serde_json::Value {
    serde_json::json!({
        "name": k.name,
        "scopes": k.scopes,
        "created_by": k.created_by,
        "created_at": k.created_at.as_ref().map(|t| time(Some(t))),
        "expires_at": k.expires_at.as_ref().map(|t| time(Some(t))),
        "revoked_at": k.revoked_at.as_ref().map(|t| time(Some(t))),
    })
}

/// A timestamp as RFC 3339, or `-`.
fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| mercator_registry::grpc::time_of("", t).ok())
        .map_or_else(
            || "-".into(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}
