//! Knowledge-base answers (issue 33): `mercator kb load` embeds the help centre's
//! passages with the served encoder and registers them as a `kb` model; `Intent/Classify`
//! answers with the nearest passages (exact cosine), and an intent marked
//! `answer_from_kb` answers from them instead of handing off.

use std::path::Path;

use mercator_proto::v1 as pb;

use crate::harness::{TestServer, read_dir_files};

/// The demo encoder model answering `return_item` from the help centre.
fn intent_with_kb() -> Option<std::collections::BTreeMap<String, bytes::Bytes>> {
    let minilm = crate::intent_encoder::minilm()?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/intent/encoder");
    let mut files = read_dir_files(&dir, &["head.safetensors"]);
    for name in ["model.safetensors", "config.json", "tokenizer.json"] {
        files.insert(name.into(), std::fs::read(minilm.join(name)).ok()?.into());
    }
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("mercator.json")).ok()?).ok()?;
    manifest["knowledge_base"] = "help_center".into();
    manifest["answer_from_kb"] = serde_json::json!(["return_item"]);
    files.insert("mercator.json".into(), manifest.to_string().into());
    Some(files)
}

async fn ask(server: &TestServer, model: &str, text: &str, k: u32) -> pb::ClassifyResponse {
    pb::intent_client::IntentClient::new(server.channel().await)
        .classify(pb::ClassifyRequest {
            model_name: model.into(),
            text: text.as_bytes().to_vec(),
            answer_top_k: k,
            ..Default::default()
        })
        .await
        .expect("classify")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_centre_answers_policy_questions() {
    let (Some(builder), Some(files)) = (TestServer::builder().demo_encoder(), intent_with_kb())
    else {
        eprintln!("all-MiniLM-L6-v2 not fetched: skipped");
        return;
    };
    let server = builder.model("intent_kb", files).start().await;
    server.wait_for_ready("intent").await;
    server.wait_for_ready("intent_kb").await;
    let url = server.url();
    let help = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/intent/help_center.jsonl");
    let help = help.display().to_string();
    let said = tokio::task::spawn_blocking(move || {
        crate::cli::ok(&["kb", "load", "help_center", &help, "--server", &url])
    })
    .await
    .expect("cli");
    assert!(
        said.contains("10 passages embedded by intent@1 (384 dimensions)"),
        "{said}"
    );
    server.wait_for_ready("help_center").await;
    let answered = ask(
        &server,
        "intent_kb",
        "how long do I have to return shoes?",
        2,
    )
    .await;
    assert_eq!(answered.answers.len(), 2, "{answered:?}");
    assert_eq!(answered.answers[0].id, "returns-window", "{answered:?}");
    assert!(answered.answers[0].score > answered.answers[1].score);
    assert_eq!(answered.intents[0].intent, "return_item");
    assert_eq!(answered.action, "answer_from_kb", "{answered:?}");
    assert!(!answered.handoff);
    // Without asking, an answer_from_kb intent still answers (three passages).
    let auto = ask(
        &server,
        "intent_kb",
        "can I still send back a jacket I bought three weeks ago?",
        0,
    )
    .await;
    if auto.intents[0].intent == "return_item" {
        assert_eq!(auto.answers.len(), 3, "{auto:?}");
    }
    // The refund question finds the refund passage first.
    let refund = ask(
        &server,
        "intent_kb",
        "when does my refund show up on my bank account?",
        1,
    )
    .await;
    assert_eq!(refund.answers[0].id, "refund-timing", "{refund:?}");
    // A model without a knowledge base answers with none.
    let plain = ask(&server, "intent", "how long do I have to return shoes?", 2).await;
    assert!(plain.answers.is_empty());
    // A bad passages file is named by line.
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}\n",
    )
    .expect("write");
    let bad = bad.display().to_string();
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        crate::cli::mercator(&["kb", "load", "bad", &bad, "--server", &url])
    })
    .await
    .expect("cli");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: id 'a' twice"), "{stderr}");
    server.stop().await;
}
