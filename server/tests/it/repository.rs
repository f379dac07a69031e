//! Triton's model repository extension (`RepositoryIndex`, `RepositoryModelLoad`,
//! `RepositoryModelUnload`) over the registry: the index says what serves here and why
//! not, an unload stops serving a model on this server, a load brings it back (or says
//! why it cannot), and bad requests are named.

use mercator_proto::inference as pb;
use tonic::Code;

use crate::harness::{TestServer, f32_bytes, input};

fn infer() -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![1, 12])],
        raw_input_contents: vec![f32_bytes(&[0.5; 12])],
        ..Default::default()
    }
}

fn entries(r: pb::RepositoryIndexResponse) -> Vec<(String, String, String)> {
    r.models
        .into_iter()
        .map(|m| (m.name, m.version, m.state))
        .collect()
}

#[tokio::test]
async fn unload_and_load_follow_the_registry() {
    let server = TestServer::builder().churn().start().await;
    let mut v2 = server.v2().await;
    let index = v2
        .repository_index(pb::RepositoryIndexRequest::default())
        .await
        .expect("index")
        .into_inner();
    assert_eq!(
        entries(index),
        [("churn".to_string(), "1".to_string(), "READY".to_string())]
    );

    v2.repository_model_unload(pb::RepositoryModelUnloadRequest {
        model_name: "churn".into(),
        ..Default::default()
    })
    .await
    .expect("unload");
    let status = v2.model_infer(infer()).await.expect_err("unloaded");
    assert_eq!(status.code(), Code::NotFound);
    let index = v2
        .repository_index(pb::RepositoryIndexRequest::default())
        .await
        .expect("index")
        .into_inner();
    assert_eq!(index.models[0].state, "UNAVAILABLE");
    assert_eq!(index.models[0].reason, "unloaded");
    let ready_only = v2
        .repository_index(pb::RepositoryIndexRequest {
            ready: true,
            ..Default::default()
        })
        .await
        .expect("ready index")
        .into_inner();
    assert!(ready_only.models.is_empty());
    // The poll loop does not bring it back by itself.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        v2.model_infer(infer())
            .await
            .expect_err("still unloaded")
            .code(),
        Code::NotFound
    );

    v2.repository_model_load(pb::RepositoryModelLoadRequest {
        model_name: "churn".into(),
        ..Default::default()
    })
    .await
    .expect("load");
    assert_eq!(
        v2.model_infer(infer())
            .await
            .expect("served again")
            .into_inner()
            .model_version,
        "1"
    );

    for (what, status, code, needle) in [
        (
            "unknown model",
            v2.repository_model_load(pb::RepositoryModelLoadRequest {
                model_name: "nope".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "nope",
        ),
        (
            "unknown repository",
            v2.repository_model_unload(pb::RepositoryModelUnloadRequest {
                repository_name: "s3-models".into(),
                model_name: "churn".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "s3-models",
        ),
        (
            "config override",
            v2.repository_model_load(pb::RepositoryModelLoadRequest {
                model_name: "churn".into(),
                parameters: [(
                    "config".to_string(),
                    pb::ModelRepositoryParameter {
                        parameter_choice: Some(
                            pb::model_repository_parameter::ParameterChoice::StringParam(
                                "{}".into(),
                            ),
                        ),
                    },
                )]
                .into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "no overrides",
        ),
    ] {
        let status = status.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_version_that_cannot_load_is_indexed_with_its_reason() {
    let server = TestServer::builder().churn().start().await;
    let v2_files = crate::harness::read_dir_files(
        std::path::Path::new(crate::harness::CHURN_DIR),
        &["mercator.json", "model.json"],
    );
    server
        .registry
        .register(mercator_registry::NewVersion {
            model: "churn".into(),
            files: v2_files,
            actor: "test".into(),
            ..Default::default()
        })
        .await
        .expect("v2");
    let v2 = server
        .registry
        .get_version("churn", &mercator_registry::VersionSelector::Number(2))
        .await
        .expect("v2");
    let mut bytes =
        std::fs::read(format!("{}/model.json", crate::harness::CHURN_DIR)).expect("model");
    bytes[100] ^= 0x01;
    server
        .registry
        .artifacts()
        .overwrite_for_test(&v2, "model.json", bytes.into())
        .await
        .expect("corrupt");
    server
        .registry
        .set_alias("churn", "champion", 2, "test", "")
        .await
        .expect("promote");
    let mut client = server.v2().await;
    let status = client
        .repository_model_load(pb::RepositoryModelLoadRequest {
            model_name: "churn".into(),
            ..Default::default()
        })
        .await
        .expect_err("version 2 cannot load");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("version 2"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("sha256"), "{}", status.message());
    let index = client
        .repository_index(pb::RepositoryIndexRequest::default())
        .await
        .expect("index")
        .into_inner();
    let by_version: Vec<(String, String)> = index
        .models
        .iter()
        .map(|m| (m.version.clone(), m.state.clone()))
        .collect();
    assert!(
        by_version.contains(&("1".into(), "READY".into())),
        "{by_version:?}"
    );
    assert!(
        by_version.contains(&("2".into(), "UNAVAILABLE".into())),
        "{by_version:?}"
    );
    // The old champion still answers.
    assert_eq!(
        client
            .model_infer(infer())
            .await
            .expect("v1")
            .into_inner()
            .model_version,
        "1"
    );
    server.stop().await;
}
