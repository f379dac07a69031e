//! `Inventory/Recommend` on the demo over a real socket: an order from each demo
//! forecaster's demand over the protection interval (ETS: exact totals; the neural net:
//! the local-level approximation), rounded to packs, the approval threshold and the
//! outcome counter, and bad input named field by field.

use mercator_proto::v1::{self as pb, inventory_client::InventoryClient};
use pb::recommend_request::Target;
use pb::recommend_response::Outcome;

use crate::harness::TestServer;

fn request(model: &str) -> pb::RecommendRequest {
    pb::RecommendRequest {
        model_name: model.into(),
        series: Some(pb::SeriesId {
            sku_id: "SKU000".into(),
            location_id: "berlin".into(),
        }),
        lead_time_days: 5.0,
        review_period_days: 7,
        target: Some(Target::CycleServiceLevel(0.95)),
        pack_size: Some(12.0),
        ..Default::default()
    }
}

async fn recommend(
    server: &TestServer,
    req: pb::RecommendRequest,
) -> Result<pb::RecommendResponse, tonic::Status> {
    InventoryClient::new(server.channel().await)
        .recommend(req)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn orders_cover_the_protection_interval_in_whole_packs() {
    let server = TestServer::builder()
        .demo()
        .config(|c| c.serving.approval_order_value = 1_000.0)
        .start()
        .await;
    for model in ["demand_ets", "demand"] {
        server.wait_for_ready(model).await;
        let got = recommend(&server, request(model)).await.expect("recommend");
        assert_eq!(
            (got.model_name.as_str(), got.model_version.as_str()),
            (model, "1")
        );
        assert_eq!(got.history_last_date, "2026-10-31");
        assert_eq!(
            got.protection_days, 12.0,
            "{model}: 5 days' lead time and a week's review"
        );
        assert_eq!(got.quantiles, vec![0.5, 0.9, 0.95]);
        // A 95% cycle service level orders up to the 95% quantile of 12 days' demand.
        assert!(
            (got.order_up_to - got.demand_quantiles[2]).abs() < 1e-6 * got.order_up_to,
            "{model}"
        );
        assert!(got.demand_mean > 0.0 && got.demand_std > 0.0, "{model}");
        assert!(
            got.reorder_point < got.order_up_to,
            "{model}: 5 days need less than 12"
        );
        // Nothing in stock: the whole level, in packs of 12.
        assert_eq!(got.inventory_position, 0.0);
        assert_eq!(got.order_quantity % 12.0, 0.0, "{model}");
        assert!(
            got.order_quantity >= got.order_up_to && got.order_quantity < got.order_up_to + 12.0
        );
        assert!(
            got.stockout_probability <= 0.05 && got.stockout_probability > 0.0,
            "{model}"
        );
        assert_eq!(got.outcome(), Outcome::Order);
        assert!(!got.needs_approval && got.order_value.is_none());

        // Stock and an order arriving in 3 days cover it: no order.
        let mut stocked = request(model);
        stocked.on_hand = got.order_up_to;
        stocked.on_order = vec![pb::OnOrder {
            quantity: 50.0,
            arrival_date: "2026-11-04".into(),
        }];
        let covered = recommend(&server, stocked.clone())
            .await
            .expect("recommend");
        assert_eq!(covered.inventory_position, got.order_up_to + 50.0);
        assert_eq!(
            (covered.order_quantity, covered.outcome()),
            (0.0, Outcome::NoOrder)
        );
        assert!(covered.stockout_probability < 0.05);
        // Units owed to customers come out of that position: 80 backordered orders again.
        stocked.backordered = 80.0;
        let owed = recommend(&server, stocked).await.expect("recommend");
        assert_eq!(owed.inventory_position, got.order_up_to + 50.0 - 80.0);
        assert_eq!(
            owed.order_quantity, 36.0,
            "{model}: 30 units short, in packs of 12"
        );

        // A valuable order needs a human.
        let mut dear = request(model);
        dear.unit_cost = Some(100.0);
        let dear = recommend(&server, dear).await.expect("recommend");
        assert_eq!(dear.order_value, Some(100.0 * dear.order_quantity));
        assert!(dear.needs_approval && dear.outcome() == Outcome::NeedsApproval);
    }
    // Each outcome per forecaster, counted: two orders (the empty shelf and the
    // backorders), one covered, one valuable.
    for model in ["demand_ets", "demand"] {
        for (outcome, count) in [("order", 2.0), ("no_order", 1.0), ("needs_approval", 1.0)] {
            let series = format!(
                r#"mercator_recommendations_total{{model="{model}",outcome="{outcome}",version="1"}}"#
            );
            assert_eq!(server.wait_for_metric(&series).await.0, count, "{series}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_named() {
    let server = TestServer::builder().demo().start().await;
    server.wait_for_ready("demand_ets").await;
    let mut cases: Vec<(pb::RecommendRequest, tonic::Code, &str)> = Vec::new();
    let base = request("demand_ets");
    let mut r = base.clone();
    r.on_hand = -1.0;
    cases.push((r, tonic::Code::InvalidArgument, "on_hand"));
    let mut r = base.clone();
    r.backordered = f64::NAN;
    cases.push((r, tonic::Code::InvalidArgument, "backordered"));
    let mut r = base.clone();
    r.target = Some(Target::CycleServiceLevel(1.5));
    cases.push((r, tonic::Code::InvalidArgument, "cycle_service_level"));
    let mut r = base.clone();
    r.target = Some(Target::FillRate(0.0));
    cases.push((r, tonic::Code::InvalidArgument, "fill_rate"));
    let mut r = base.clone();
    r.target = None;
    cases.push((r, tonic::Code::InvalidArgument, "target"));
    let mut r = base.clone();
    r.pack_size = Some(0.0);
    cases.push((r, tonic::Code::InvalidArgument, "pack_size"));
    let mut r = base.clone();
    r.lead_time_days = -2.0;
    cases.push((r, tonic::Code::InvalidArgument, "lead_time_days"));
    let mut r = base.clone();
    r.lead_time_days = 1e6;
    cases.push((r, tonic::Code::InvalidArgument, "lead_time_days"));
    let mut r = base.clone();
    r.lead_time_distribution = vec![pb::LeadTimeOutcome {
        days: 3,
        probability: -1.0,
    }];
    cases.push((
        r,
        tonic::Code::InvalidArgument,
        "lead_time_distribution[0].probability",
    ));
    // Found from outside: a distribution that forgot half its mass was rescaled, and
    // an absurd backorder was ordered.
    let mut r = base.clone();
    r.lead_time_distribution = vec![
        pb::LeadTimeOutcome {
            days: 3,
            probability: 0.25,
        },
        pb::LeadTimeOutcome {
            days: 5,
            probability: 0.25,
        },
    ];
    cases.push((r, tonic::Code::InvalidArgument, "sum to 0.5, not 1"));
    let mut r = base.clone();
    r.backordered = 1e308;
    cases.push((r, tonic::Code::InvalidArgument, "backordered"));
    let mut r = base.clone();
    r.on_hand = 2e12;
    cases.push((r, tonic::Code::InvalidArgument, "on_hand"));
    let mut r = base.clone();
    r.series = Some(pb::SeriesId {
        sku_id: "S".repeat(2000),
        location_id: "berlin".into(),
    });
    cases.push((r, tonic::Code::InvalidArgument, "series.sku_id"));
    let mut r = base.clone();
    r.on_order = vec![pb::OnOrder {
        quantity: 5.0,
        arrival_date: "2026-10-15".into(),
    }];
    cases.push((r, tonic::Code::InvalidArgument, "on_order[0].arrival_date"));
    let mut r = base.clone();
    r.on_order = vec![pb::OnOrder {
        quantity: -5.0,
        arrival_date: "2026-11-15".into(),
    }];
    cases.push((r, tonic::Code::InvalidArgument, "on_order[0].quantity"));
    let mut r = base.clone();
    r.min_order_quantity = f64::NAN;
    cases.push((r, tonic::Code::InvalidArgument, "min_order_quantity"));
    let mut r = base.clone();
    r.quantiles = vec![0.5, 1.0];
    cases.push((r, tonic::Code::InvalidArgument, "quantiles[1]"));
    let mut r = base.clone();
    r.series = Some(pb::SeriesId {
        sku_id: "SKU999".into(),
        location_id: "berlin".into(),
    });
    cases.push((r, tonic::Code::NotFound, "SKU999"));
    let mut r = base;
    r.model_name = "churn".into();
    cases.push((r, tonic::Code::FailedPrecondition, "not a forecaster"));
    for (req, code, names) in cases {
        let err = recommend(&server, req).await.expect_err(names);
        assert_eq!(err.code(), code, "{names}: {}", err.message());
        assert!(
            err.message().contains(names),
            "{} should name {names}",
            err.message()
        );
    }
    server.stop().await;
}

/// `RecommendBatch`: items answered in order, each with its own status, the good ones
/// as `Recommend` answers them alone; a batch naming models per item is refused whole.
#[tokio::test]
async fn a_batch_answers_each_item_in_order() {
    let server = TestServer::builder().demo().start().await;
    server.wait_for_ready("demand_ets").await;
    let mut item = request("");
    let alone = recommend(&server, request("demand_ets"))
        .await
        .expect("alone");
    let mut bad = item.clone();
    bad.on_hand = -3.0;
    let mut unknown = item.clone();
    unknown.series = Some(pb::SeriesId {
        sku_id: "SKU999".into(),
        location_id: "berlin".into(),
    });
    let mut other = item.clone();
    other.series = Some(pb::SeriesId {
        sku_id: "SKU001".into(),
        location_id: "berlin".into(),
    });
    let mut client = InventoryClient::new(server.channel().await);
    let mut stream = client
        .recommend_batch(pb::RecommendBatchRequest {
            model_name: "demand_ets".into(),
            items: vec![item.clone(), bad, unknown, other],
            ..Default::default()
        })
        .await
        .expect("batch")
        .into_inner();
    let mut got = Vec::new();
    while let Some(msg) = stream.message().await.expect("stream") {
        got.extend(msg.recommendations);
    }
    let indexes: Vec<u32> = got.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    assert_eq!(got[0].code, 0);
    assert_eq!(
        got[0].recommendation.as_ref(),
        Some(&alone),
        "as Recommend answers it"
    );
    assert_eq!(got[1].code, tonic::Code::InvalidArgument as i32);
    assert!(got[1].error.contains("on_hand"), "{}", got[1].error);
    assert_eq!(got[2].code, tonic::Code::NotFound as i32);
    assert!(got[2].error.contains("SKU999"), "{}", got[2].error);
    assert_eq!(got[3].code, 0);
    assert_eq!(
        got[3]
            .recommendation
            .as_ref()
            .and_then(|r| r.series.as_ref())
            .map(|s| s.sku_id.as_str()),
        Some("SKU001")
    );

    item.model_name = "demand".into();
    let err = client
        .recommend_batch(pb::RecommendBatchRequest {
            model_name: "demand_ets".into(),
            items: vec![item],
            ..Default::default()
        })
        .await
        .expect_err("an item naming a model");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("items[0].model_name"),
        "{}",
        err.message()
    );
    let err = client
        .recommend_batch(pb::RecommendBatchRequest {
            model_name: "demand_ets".into(),
            ..Default::default()
        })
        .await
        .expect_err("no items");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    server.stop().await;
}
