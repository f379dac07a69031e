//! Object-store credentials and settings from the environment, for the URLs the feature
//! store opens (`s3://…` history, `LoadFile` locations). `object_store::parse_url_opts`
//! knows its options by their lower-case names (`aws_access_key_id`) and silently skips
//! anything else, so the variables as operators set them (`AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_KEY`) are lower-cased
//! here, the way the builders' own `from_env` reads them.

/// The cloud variables among `vars`, under the names `parse_url_opts` takes.
pub(crate) fn object_options(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    vars.into_iter()
        .filter_map(|(key, value)| {
            let key = key.to_ascii_lowercase();
            ["aws_", "google_", "azure_"]
                .iter()
                .any(|p| key.starts_with(p))
                .then_some((key, value))
        })
        .collect()
}

/// [`object_options`] of this process's environment.
pub fn from_env() -> Vec<(String, String)> {
    object_options(std::env::vars())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_variables_are_lower_cased_and_others_dropped() {
        let vars = [
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("GOOGLE_SERVICE_ACCOUNT", "/sa.json"),
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("PATH", "/usr/bin"),
            ("MERCATOR_AWS_THING", "x"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let got = object_options(vars);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "aws_access_key_id",
                "aws_endpoint",
                "google_service_account",
                "azure_storage_account_name"
            ]
        );
        // Each is a key object_store takes.
        for (key, _) in &got {
            if key.starts_with("aws_") {
                assert!(
                    key.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok(),
                    "{key}"
                );
            }
        }
    }
}
