//! Conversations over a real socket (issue 33): a `session_id` keeps the order number a
//! turn gave for the follow-up ("and when will it arrive?"), counts the turns, and hands
//! a conversation that keeps failing to a person (`repeated_failure`); with the embedded
//! online store, and with Redis shared by two replicas, where the follow-up reaches the
//! other replica and still finds the conversation.

use mercator_proto::v1 as pb;

use crate::harness::TestServer;

async fn say(server: &TestServer, session: &str, text: &str) -> pb::ClassifyResponse {
    pb::intent_client::IntentClient::new(server.channel().await)
        .classify(pb::ClassifyRequest {
            text: text.as_bytes().to_vec(),
            session_id: session.into(),
            reference_date: "2026-12-07".into(),
            ..Default::default()
        })
        .await
        .expect("classify")
        .into_inner()
}

/// The order-status script: asked for the number, given it, then a follow-up that
/// needs it (`then` answers the last two turns, so a second replica can).
async fn order_script(first: &TestServer, then: &TestServer, session: &str) {
    let asked = say(first, session, "where is my parcel? it still hasn't come").await;
    assert_eq!(asked.intents[0].intent, "order_status", "{asked:?}");
    assert_eq!(
        (asked.turn, asked.action.as_str()),
        (1, "ask_for_order_number")
    );
    let given = say(then, session, "where is order 58213").await;
    assert_eq!(given.turn, 2);
    assert_eq!(given.action, "show_tracking", "{given:?}");
    let follow = say(then, session, "and when will it arrive?").await;
    assert_eq!(follow.turn, 3);
    assert_eq!(follow.intents[0].intent, "order_status", "{follow:?}");
    assert_eq!(
        follow.action, "show_tracking",
        "the number is remembered: {follow:?}"
    );
    let slot = follow
        .slots
        .iter()
        .find(|s| s.name == "order_number")
        .expect("the remembered order number");
    assert!(slot.remembered && slot.value == "58213", "{slot:?}");
    // Another session knows nothing of it.
    let other = say(
        then,
        &format!("{session}-other"),
        "and when will it arrive?",
    )
    .await;
    assert_eq!(
        (other.turn, other.action.as_str()),
        (1, "ask_for_order_number")
    );
}

/// Two messages the model cannot place, in a row, go to a person (the demo model is
/// confident on much that is off topic; these two it is not).
async fn failure_script(server: &TestServer, session: &str) {
    let first = say(server, session, "banana").await;
    assert_eq!(first.handoff_reason, "low_confidence", "{first:?}");
    let second = say(server, session, "lorem ipsum dolor sit amet").await;
    assert!(second.handoff, "{second:?}");
    assert_eq!(second.handoff_reason, "repeated_failure", "{second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_remembered_in_the_embedded_store() {
    let Some(builder) = TestServer::builder().demo_encoder() else {
        eprintln!("all-MiniLM-L6-v2 not fetched: skipped");
        return;
    };
    let server = builder.start().await;
    server.wait_for_ready("intent").await;
    order_script(&server, &server, "embedded-1").await;
    failure_script(&server, "embedded-2").await;
    // A session id is a key: one too long to be one is named.
    let err = pb::intent_client::IntentClient::new(server.channel().await)
        .classify(pb::ClassifyRequest {
            text: b"where is my parcel".to_vec(),
            session_id: "s".repeat(100_000),
            ..Default::default()
        })
        .await
        .expect_err("too long");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("session_id"), "{}", err.message());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_a_conversation() {
    let Ok(url) = std::env::var("MERCATOR_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_REDIS_URL"
        );
        eprintln!("MERCATOR_TEST_REDIS_URL unset: skipped");
        return;
    };
    let Some(builder) = TestServer::builder().demo_encoder() else {
        eprintln!("all-MiniLM-L6-v2 not fetched: skipped");
        return;
    };
    // Database 5 is this test's alone; start it empty.
    let db = crate::harness::empty_redis_db(&url, 5).await;
    let online = db.clone();
    let a = builder
        .config(move |c| c.features.online_store = online)
        .start()
        .await;
    let Some(builder) = TestServer::builder().demo_encoder() else {
        return;
    };
    let online = db.clone();
    let b = builder
        .config(move |c| c.features.online_store = online)
        .start()
        .await;
    a.wait_for_ready("intent").await;
    b.wait_for_ready("intent").await;
    order_script(&a, &b, "redis-1").await;
    failure_script(&b, "redis-2").await;
    a.stop().await;
    b.stop().await;
}
