//! Authentication and scopes, against a real server with `[auth] mode = "required"`:
//! every RPC of every service × {no credential, a garbage one, expired, revoked, wrong
//! scope, right scope}; who acted is the key's name; revocation reaches the server; the
//! CLI sends its key; an open server on a network address is refused.

use std::str::FromStr;

use chrono::{Duration, Utc};
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_server::auth::{Access, Scope, scopes::access};
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use crate::cli::mercator;
use crate::harness::{TestServer, bearer};

async fn secured() -> TestServer {
    TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            // Every lookup reaches the registry: revocations are seen at once.
            c.auth.key_cache_secs = 0.0;
        })
        .start()
        .await
}

/// A key named `name` with `scopes`, made on the server's registry; the secret.
pub(crate) async fn key(server: &TestServer, name: &str, scopes: &[Scope]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.name().to_string()).collect();
    server
        .registry
        .create_key(name, &scopes, None, "test")
        .await
        .expect("create key")
        .1
}

/// Calls `path` with an empty message (as a stream, so one call shape fits unary and
/// streaming methods alike) and the given `authorization`; the status, OK when the
/// server answered with a stream.
async fn call(channel: &Channel, path: &str, token: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let messages = futures::stream::iter([()]);
    let req = match token {
        Some(token) => bearer(messages, token),
        None => tonic::Request::new(messages),
    };
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::from_str(path).expect("path");
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        grpc.streaming(req, path, codec),
    )
    .await
    .expect("an answer");
    match answer {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

fn is_auth_refusal(code: Code) -> bool {
    matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

/// Every RPC of every service: open ones refuse nobody; the others answer UNAUTHENTICATED
/// with no credential or any of `refused` (one message for all), PERMISSION_DENIED naming
/// the scope to every other scope's credential, and pass with `right[scope]` or admin.
pub(crate) async fn matrix(
    channel: &Channel,
    right: &std::collections::HashMap<Scope, String>,
    refused: &[(&str, &str)],
) {
    let methods = mercator_server::descriptors::methods();
    assert!(
        methods.len() >= 40,
        "descriptor sets read: {}",
        methods.len()
    );
    for (service, method) in methods {
        let path = format!("/{service}/{method}");
        let needed = access(&path);
        let tokens = refused.iter().map(|(what, token)| (*what, Some(*token)));
        for (what, token) in std::iter::once(("no credential", None)).chain(tokens) {
            let status = call(channel, &path, token).await;
            match needed {
                Access::Open | Access::Reflection => assert!(
                    !is_auth_refusal(status.code()),
                    "{path} is open, yet {what}: {status:?}"
                ),
                Access::Scope(_) => {
                    assert_eq!(
                        status.code(),
                        Code::Unauthenticated,
                        "{path} with {what}: {status:?}"
                    );
                    assert!(!status.message().contains("hunter2"), "{status:?}");
                    if token.is_some() {
                        // One answer for unknown, expired and revoked: nothing revealed.
                        assert_eq!(
                            status.message(),
                            "the credential was refused: unknown, expired or revoked",
                            "{path} with {what}"
                        );
                    }
                }
            }
        }
        let Access::Scope(scope) = needed else {
            continue;
        };
        let status = call(channel, &path, Some(&right[&scope])).await;
        assert!(
            !is_auth_refusal(status.code()),
            "{path} with {scope}: {status:?}"
        );
        let admin = call(channel, &path, Some(&right[&Scope::Admin])).await;
        assert!(
            !is_auth_refusal(admin.code()),
            "{path} with admin: {admin:?}"
        );
        for other in Scope::ALL
            .into_iter()
            .filter(|s| *s != scope && *s != Scope::Admin)
        {
            let status = call(channel, &path, Some(&right[&other])).await;
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{path} with {other}: {status:?}"
            );
            assert!(
                status.message().contains(&format!("`{scope}`")),
                "{path}: the refusal names the scope: {status:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_against_every_kind_of_credential() {
    let server = secured().await;
    let mut right = std::collections::HashMap::new();
    for scope in Scope::ALL {
        right.insert(
            scope,
            key(
                &server,
                &format!("k-{}", scope.name().replace(':', "-")),
                &[scope],
            )
            .await,
        );
    }
    let expired = {
        let (_, secret) = server
            .registry
            .create_key(
                "expired",
                &["admin".into()],
                Some(Utc::now() - Duration::seconds(1)),
                "test",
            )
            .await
            .expect("expired key");
        secret
    };
    let revoked = key(&server, "revoked", &[Scope::Admin]).await;
    server
        .registry
        .revoke_key("revoked", "test")
        .await
        .expect("revoke");
    let garbage = format!("mk_{}", "0".repeat(64));

    let channel = server.channel().await;
    let refused = [
        ("garbage", garbage.as_str()),
        ("not a key", "hunter2"),
        ("expired", expired.as_str()),
        ("revoked", revoked.as_str()),
    ];
    matrix(&channel, &right, &refused).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_the_actor_and_revocation_is_seen() {
    let server = secured().await;
    let writer = key(&server, "ci-bot", &[Scope::ModelsWrite]).await;
    let promoter = key(&server, "release-manager", &[Scope::ModelsPromote]).await;
    let admin = key(&server, "auditor", &[Scope::Admin]).await;
    let mut registry = RegistryClient::new(server.channel().await);
    let registered = registry
        .register_version(bearer(
            pb::RegisterVersionRequest {
                actor: "root".into(),
                ..crate::lifecycle::upload("churn")
            },
            &writer,
        ))
        .await
        .expect("register")
        .into_inner()
        .version
        .expect("version");
    assert_eq!(
        registered.registered_by, "ci-bot",
        "the key, not what the client claims"
    );
    let promote = pb::PromoteRequest {
        model: "churn".into(),
        version: registered.version,
        reason: "better".into(),
        actor: "root".into(),
    };
    let refused = registry
        .promote(bearer(promote.clone(), &writer))
        .await
        .expect_err("models:write cannot promote");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("`models:promote`"),
        "{refused:?}"
    );
    registry
        .promote(bearer(promote, &promoter))
        .await
        .expect("promote");
    let log = registry
        .audit_log(bearer(
            pb::AuditLogRequest {
                model: "churn".into(),
                limit: 10,
            },
            &admin,
        ))
        .await
        .expect("audit log")
        .into_inner()
        .entries;
    let actors: Vec<&str> = log.iter().map(|e| e.actor.as_str()).collect();
    assert!(
        actors.contains(&"ci-bot") && actors.contains(&"release-manager"),
        "{actors:?}"
    );
    assert!(!actors.contains(&"root"), "{actors:?}");

    let revoke = pb::RevokeApiKeyRequest {
        name: "ci-bot".into(),
    };
    registry
        .revoke_api_key(bearer(revoke, &admin))
        .await
        .expect("revoke");
    let refused = registry
        .list_models(bearer(pb::ListModelsRequest {}, &writer))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let keys = registry
        .list_api_keys(bearer(pb::ListApiKeysRequest {}, &admin))
        .await
        .expect("list keys")
        .into_inner()
        .keys;
    let listed =
        serde_json::to_string(&keys.iter().map(|k| &k.name).collect::<Vec<_>>()).expect("json");
    assert!(listed.contains("ci-bot"), "{listed}");
    assert!(
        keys.iter()
            .find(|k| k.name == "ci-bot")
            .is_some_and(|k| k.revoked_at.is_some())
    );
    let bad_scope = registry
        .create_api_key(bearer(
            pb::CreateApiKeyRequest {
                name: "x".into(),
                scopes: vec!["root".into()],
                expires_at: None,
            },
            &admin,
        ))
        .await
        .expect_err("unknown scope");
    assert_eq!(bad_scope.code(), Code::InvalidArgument);
    assert!(bad_scope.message().contains("scopes[0]"), "{bad_scope:?}");
    server.stop().await;
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_makes_the_first_key_locally_and_sends_it() {
    let server = secured().await;
    let data_dir = server.data_dir.path().display().to_string();
    let out = mercator(&[
        "keys",
        "--data-dir",
        &data_dir,
        "create",
        "ops",
        "--scope",
        "admin",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let url = server.url();

    let denied = mercator(&["models", "--server", &url, "list"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let listed = mercator(&["models", "--server", &url, "--token", &secret, "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("churn"));

    let file = server.data_dir.path().join("token");
    std::fs::write(&file, format!("{secret}\n")).expect("token file");
    let file = file.display().to_string();
    let keys = mercator(&[
        "keys",
        "--server",
        &url,
        "--token-file",
        &file,
        "list",
        "--json",
    ]);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let stdout = String::from_utf8_lossy(&keys.stdout);
    assert!(stdout.contains("\"ops\""), "{stdout}");
    assert!(!stdout.contains(&secret), "a key is never listed");
    let keys: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        keys[0]["created_by"], "cli-test",
        "the local operator made it"
    );
    server.stop().await;
}

#[test]
fn an_open_server_on_a_network_address_is_refused() {
    let out = mercator(&["serve", "--grpc-addr", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "auth.mode = \"none\" is allowed only when every listener is on a loopback address"
        ) && stderr.contains("grpc.addr is 0.0.0.0:0"),
        "{stderr}"
    );
}

#[tokio::test]
async fn reflection_can_be_protected() {
    let server = TestServer::builder()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.protect_reflection = true;
        })
        .start()
        .await;
    let channel = server.channel().await;
    let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    let anonymous = call(&channel, reflection, None).await;
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    let any_key = key(&server, "reader", &[Scope::FeaturesRead]).await;
    let status = call(&channel, reflection, Some(&any_key)).await;
    assert!(
        !is_auth_refusal(status.code()),
        "any valid key may reflect: {status:?}"
    );
    let health = call(&channel, "/grpc.health.v1.Health/Check", None).await;
    assert!(
        !is_auth_refusal(health.code()),
        "health stays open: {health:?}"
    );
    server.stop().await;
}
