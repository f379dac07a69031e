//! Bearer tokens as the auth layer receives them, against a JWKS with an RSA and an EC
//! key: anything that is not a valid token must be refused, never panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use mercator_server::auth::jwt::{JwtSettings, JwtVerifier};

const JWKS: &str = include_str!("../jwks.json");

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("mercator-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&path, JWKS).expect("write the JWKS");
        JwtVerifier::start(JwtSettings {
            jwks_file: path,
            issuer: "https://idp.example.test/".into(),
            audience: "mercator".into(),
            scopes_claim: "realm_access.roles".into(),
            leeway: Duration::from_secs(30),
            reload: Duration::ZERO,
        })
        .expect("the JWKS loads")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = verifier().verify(token);
    }
});
