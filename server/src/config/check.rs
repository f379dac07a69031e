//! The checks of a loaded configuration: values that parse but cannot work are refused
//! at start, each naming its key as `section.key`.

use super::{Config, ConfigError};

impl Config {
    /// Refuses values that parse but cannot work, naming the key as `section.key`.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("limits.max_message_bytes", self.limits.max_message_bytes),
            ("limits.max_batch_size", self.limits.max_batch_size),
            ("limits.max_in_flight", self.limits.max_in_flight),
            ("limits.max_horizon_days", self.limits.max_horizon_days),
            ("limits.max_batch_series", self.limits.max_batch_series),
            ("limits.max_history_days", self.limits.max_history_days),
            ("limits.max_push_rows", self.limits.max_push_rows),
            (
                "limits.max_upload_bytes",
                usize::try_from(self.limits.max_upload_bytes).unwrap_or(usize::MAX),
            ),
            ("limits.max_text_bytes", self.limits.max_text_bytes),
            (
                "limits.max_score_customers",
                self.limits.max_score_customers,
            ),
            (
                "limits.max_unauthenticated_body_bytes",
                self.limits.max_unauthenticated_body_bytes,
            ),
            ("drift.window_samples", self.drift.window_samples),
            (
                "grpc.max_buffered_request_bytes",
                self.grpc.max_buffered_request_bytes,
            ),
            (
                "grpc.max_buffered_request_bytes_per_connection",
                self.grpc.max_buffered_request_bytes_per_connection,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be greater than 0")));
            }
        }
        self.streams.check().map_err(ConfigError)?;
        let v = self.serving.approval_order_value;
        if !(v.is_finite() && v >= 0.0) {
            return Err(ConfigError(
                "serving.approval_order_value must be a finite amount ≥ 0".into(),
            ));
        }
        for (model, quality) in &self.prediction_log.quality {
            quality
                .check()
                .map_err(|e| ConfigError(format!("prediction_log.quality.{model}: {e}")))?;
        }
        let log = &self.prediction_log;
        let shares = std::iter::once(("v2_sampling".to_string(), log.v2_sampling)).chain(
            log.sampling
                .iter()
                .map(|(k, v)| (format!("sampling.\"{k}\""), *v)),
        );
        for (key, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(ConfigError(format!(
                    "prediction_log.{key} must be a share from 0 to 1"
                )));
            }
        }
        for (key, value, low) in [
            (
                "prediction_log.quality_window_days",
                log.quality_window_days,
                0.0,
            ),
            (
                "prediction_log.quality_every_secs",
                log.quality_every_secs,
                0.0,
            ),
        ] {
            if !(value.is_finite() && value >= low) {
                return Err(ConfigError(format!(
                    "{key} must be a finite number ≥ {low}"
                )));
            }
        }
        if log.quality_window_days <= 0.0 {
            return Err(ConfigError(
                "prediction_log.quality_window_days must be greater than 0".into(),
            ));
        }
        for (model, batching) in &self.serving.batching {
            batching
                .check()
                .map_err(|e| ConfigError(format!("serving.batching.{model}: {e}")))?;
        }
        for (key, value) in [
            ("drift.window_secs", self.drift.window_secs),
            ("drift.interval_secs", self.drift.interval_secs),
            (
                "registry.instance_ttl_secs",
                self.registry.instance_ttl_secs,
            ),
        ] {
            if !(value > 0.0 && value.is_finite() && value < 1e9) {
                return Err(ConfigError(format!(
                    "{key} must be a positive number of seconds"
                )));
            }
        }
        for (key, value) in [
            ("grpc.request_timeout_secs", self.grpc.request_timeout_secs),
            (
                "grpc.keepalive_timeout_secs",
                self.grpc.keepalive_timeout_secs,
            ),
        ] {
            if !(value > 0.0 && value.is_finite() && value < 1e7) {
                return Err(ConfigError(format!(
                    "{key} must be a positive number of seconds"
                )));
            }
        }
        let skew = self.features.max_future_skew_secs;
        if !(skew >= 0.0 && skew.is_finite() && skew < 1e10) {
            return Err(ConfigError(
                "features.max_future_skew_secs must be zero or a number of seconds".into(),
            ));
        }
        if !(16..=1 << 20).contains(&self.features.history_memory_mb) {
            return Err(ConfigError(
                "features.history_memory_mb must be between 16 and 1048576 (MiB)".into(),
            ));
        }
        for (key, value) in [
            (
                "grpc.keepalive_interval_secs",
                self.grpc.keepalive_interval_secs,
            ),
            (
                "grpc.max_connection_age_secs",
                self.grpc.max_connection_age_secs,
            ),
        ] {
            if !(value >= 0.0 && value.is_finite() && value < 1e7) {
                return Err(ConfigError(format!(
                    "{key} must be zero (off) or a number of seconds"
                )));
            }
        }
        for (key, value) in [
            (
                "grpc.max_concurrent_streams",
                self.grpc.max_concurrent_streams,
            ),
            (
                "grpc.max_header_list_bytes",
                self.grpc.max_header_list_bytes,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be greater than 0")));
            }
        }
        let poll = self.registry.poll_interval_secs;
        if !(poll > 0.0 && poll.is_finite()) {
            return Err(ConfigError(
                "registry.poll_interval_secs must be a positive number".into(),
            ));
        }
        let header = self.server.header_read_timeout_secs;
        if !(header > 0.0 && header.is_finite() && header < 1e7) {
            return Err(ConfigError(
                "server.header_read_timeout_secs must be a positive number of seconds".into(),
            ));
        }
        let idle = self.server.idle_timeout_secs;
        if !(idle >= 0.0 && idle.is_finite() && idle < 1e9) {
            return Err(ConfigError(
                "server.idle_timeout_secs must be zero (never) or a number of seconds".into(),
            ));
        }
        let grace = self.server.shutdown_grace_secs;
        if !(grace >= 0.0 && grace.is_finite()) {
            return Err(ConfigError(
                "server.shutdown_grace_secs must be zero or positive".into(),
            ));
        }
        let store = self.features.online_store.as_str();
        if !mercator_features::online::is_backend(store) {
            return Err(ConfigError(format!(
                "features.online_store '{store}' must be {}",
                mercator_features::online::BACKENDS
            )));
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            return Err(ConfigError(format!(
                "server.log_format '{}' must be text or json",
                self.server.log_format
            )));
        }
        for alias in &self.models.serve_aliases {
            mercator_registry::model::check_name("models.serve_aliases", alias)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        self.models.pinned()?;
        self.check_tls()?;
        self.check_auth()
    }

    /// `[tls]`: both files or neither, a known client-certificate rule, principals that
    /// parse and that a CA can vouch for.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            return Err(ConfigError(
                "tls.cert_file and tls.key_file must be set together".into(),
            ));
        }
        if !matches!(tls.client_cert.as_str(), "required" | "optional") {
            return Err(ConfigError(format!(
                "tls.client_cert '{}' must be required or optional",
                tls.client_cert
            )));
        }
        if !tls.client_ca_file.is_empty() && !tls.enabled() {
            return Err(ConfigError(
                "tls.client_ca_file needs tls.cert_file and tls.key_file: client certificates \
                 are checked only on TLS connections"
                    .into(),
            ));
        }
        if !tls.client_principals.is_empty() && tls.client_ca_file.is_empty() {
            return Err(ConfigError(
                "tls.client_principals needs tls.client_ca_file, the CA that vouches for them"
                    .into(),
            ));
        }
        tls.principals().map_err(ConfigError)?;
        let reload = tls.reload_secs;
        if !(reload >= 0.0 && reload.is_finite() && reload < 1e7) {
            return Err(ConfigError(
                "tls.reload_secs must be zero (never) or a number of seconds".into(),
            ));
        }
        Ok(())
    }

    /// `[auth]`: a known mode, and no open server on a network.
    fn check_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if !matches!(auth.mode.as_str(), "none" | "required") {
            return Err(ConfigError(format!(
                "auth.mode '{}' must be none or required",
                auth.mode
            )));
        }
        if !(auth.key_cache_secs >= 0.0
            && auth.key_cache_secs.is_finite()
            && auth.key_cache_secs < 1e6)
        {
            return Err(ConfigError(
                "auth.key_cache_secs must be zero or a positive number of seconds".into(),
            ));
        }
        if !auth.jwks_file.is_empty() {
            for (key, value) in [
                ("auth.jwt_issuer", &auth.jwt_issuer),
                ("auth.jwt_audience", &auth.jwt_audience),
                ("auth.jwt_scopes_claim", &auth.jwt_scopes_claim),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError(format!(
                        "{key} must be set when auth.jwks_file is: a token from any issuer or \
                         for any audience would otherwise be accepted"
                    )));
                }
            }
        }
        auth.rates().map_err(ConfigError)?;
        let reload = auth.jwks_reload_secs;
        if !(reload >= 0.0 && reload.is_finite() && reload < 1e7) {
            return Err(ConfigError(
                "auth.jwks_reload_secs must be zero (never) or a number of seconds".into(),
            ));
        }
        if auth.required() {
            return Ok(());
        }
        for (key, addr) in [
            ("grpc.addr", self.grpc.addr),
            ("metrics.addr", self.metrics.addr),
        ] {
            if !addr.ip().is_loopback() {
                return Err(ConfigError(format!(
                    "auth.mode = \"none\" is allowed only when every listener is on a loopback \
                     address, and {key} is {addr}. Either set [auth] mode = \"required\" and \
                     give callers keys (`mercator keys create NAME --scope infer`), or listen on \
                     127.0.0.1"
                )));
            }
        }
        Ok(())
    }
}
