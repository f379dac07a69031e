//! Integration tests: each starts a real server on an ephemeral port and calls it over
//! gRPC (and HTTP for metrics), as clients would.
#![allow(
    unreachable_pub,
    reason = "helpers are shared between test modules of one binary"
)]

mod approval;
mod auth;
mod bad_input;
mod batching;
mod caps;
mod churn;
mod cli;
mod connections;
mod conversation;
mod decoders;
mod deploy;
mod drift;
mod experiments;
mod features;
mod fleet;
mod forecast;
mod fuzz_corpus;
mod hardening;
mod harness;
mod historical;
mod hot_swap;
mod infer;
mod intent_encoder;
mod inventory;
mod inventory_backtest;
mod jwt;
mod kafka;
mod knowledge_base;
mod lifecycle;
mod metrics;
mod new_kinds;
mod perf_analyzer;
mod prediction_log;
mod prediction_log_crash;
mod profile;
mod python_sdk;
mod quality;
mod readiness;
mod readme;
mod reasons;
mod registry_outage;
mod registry_records;
mod repository;
mod request_id;
mod rest;
mod security;
mod shutdown;
mod signature;
mod spark_history;
mod store_outage;
mod stream_crash;
mod stream_infer;
mod stream_triggers;
mod streams;
mod tls;
mod tls_stores;
mod traffic;
mod tritonclient;
mod uplift;
mod upload;
