//! Protected aliases and the four-eyes rule, against a real server with auth on and
//! `[models] require_approval`: the registrant cannot approve or promote alone, a second
//! principal's approval opens the way, and the audit log names both (and the refusals).

use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_server::auth::Scope;
use tonic::Code;
use tonic::transport::Channel;

use crate::auth::key;
use crate::harness::{TestServer, bearer};

async fn register(
    registry: &mut RegistryClient<Channel>,
    token: &str,
    alias: &str,
) -> Result<u64, tonic::Status> {
    let req = pb::RegisterVersionRequest {
        alias: alias.into(),
        ..crate::lifecycle::upload("churn")
    };
    let version = registry.register_version(bearer(req, token)).await?;
    Ok(version.into_inner().version.map_or(0, |v| v.version))
}

fn promote(version: u64) -> pb::PromoteRequest {
    pb::PromoteRequest {
        model: "churn".into(),
        version,
        reason: "better AUC".into(),
        actor: String::new(),
    }
}

fn approve(version: u64) -> pb::ApproveVersionRequest {
    pb::ApproveVersionRequest {
        model: "churn".into(),
        version,
        reason: "reviewed the backtest".into(),
        actor: "someone-else".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrant_cannot_promote_alone_and_a_second_principal_can_approve() {
    let server = TestServer::builder()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
            c.models.require_approval = true;
        })
        .start()
        .await;
    let alice = key(
        &server,
        "alice",
        &[Scope::ModelsWrite, Scope::ModelsPromote],
    )
    .await;
    let bob = key(&server, "bob", &[Scope::ModelsPromote]).await;
    let carol = key(&server, "carol", &[Scope::ModelsWrite]).await;
    let auditor = key(&server, "auditor", &[Scope::Admin]).await;
    let mut registry = RegistryClient::new(server.channel().await);

    // Registering straight onto the protected alias: not with models:write alone, and not
    // at all while approvals are required.
    let refused = register(&mut registry, &carol, "champion")
        .await
        .expect_err("models:write cannot move champion");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("`models:promote`"),
        "{refused:?}"
    );
    let refused = register(&mut registry, &alice, "champion")
        .await
        .expect_err("a new version is not approved");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("protected"), "{refused:?}");

    let v1 = register(&mut registry, &alice, "").await.expect("register");
    let own = registry
        .approve_version(bearer(approve(v1), &alice))
        .await
        .expect_err("the registrant cannot approve");
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");
    assert!(
        own.message().contains("'alice' registered version"),
        "{own:?}"
    );
    for attempt in [
        registry
            .promote(bearer(promote(v1), &alice))
            .await
            .map(|_| ()),
        registry
            .set_alias(bearer(
                pb::SetAliasRequest {
                    model: "churn".into(),
                    alias: "champion".into(),
                    version: v1,
                    reason: String::new(),
                    actor: String::new(),
                },
                &alice,
            ))
            .await
            .map(|_| ()),
    ] {
        let status = attempt.expect_err("not approved yet");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status
                .message()
                .contains("needs an approval by a principal other than 'alice'"),
            "{status:?}"
        );
    }
    // An unprotected alias is not gated.
    registry
        .set_alias(bearer(
            pb::SetAliasRequest {
                model: "churn".into(),
                alias: "challenger".into(),
                version: v1,
                reason: String::new(),
                actor: String::new(),
            },
            &alice,
        ))
        .await
        .expect("challenger is not protected");

    let approved = registry
        .approve_version(bearer(approve(v1), &bob))
        .await
        .expect("bob approves")
        .into_inner();
    let approval = approved.approval.expect("approval");
    assert_eq!(
        approval.approved_by, "bob",
        "the key, not the claimed actor"
    );
    assert_eq!(approved.approvals.len(), 1);
    let promoted = registry
        .promote(bearer(promote(v1), &alice))
        .await
        .expect("approved by bob, alice may promote")
        .into_inner();
    assert_eq!(promoted.champion.expect("move").to_version, v1);

    let log = registry
        .audit_log(bearer(
            pb::AuditLogRequest {
                model: "churn".into(),
                limit: 50,
            },
            &auditor,
        ))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let seen = |actor: &str, action: &str| {
        log.iter()
            .any(|e| e.actor == actor && e.action == action && e.version == v1)
    };
    assert!(seen("alice", "register"), "{log:?}");
    assert!(seen("bob", "approve"), "{log:?}");
    assert!(seen("alice", "promote"), "{log:?}");
    assert!(
        seen("alice", "refused"),
        "the refusals are audited: {log:?}"
    );
    server.stop().await;
}
