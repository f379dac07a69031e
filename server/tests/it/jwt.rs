//! JWTs from an identity provider the test plays: RSA and EC keys generated here, their
//! public halves in a JWKS file the server reads and re-reads. The same RPC × credential
//! matrix as for API keys, plus what is particular to tokens: issuer, audience,
//! not-before, algorithm confusion, key rotation, and the subject as the actor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_server::auth::Scope;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;
use tonic::Code;

use crate::auth::matrix;
use crate::harness::{TestServer, bearer};

const ISSUER: &str = "https://idp.example.test/";
const AUDIENCE: &str = "mercator";

/// One signing key of the test's identity provider.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    fn rsa(kid: &str) -> SigningKey {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key");
        let der = private.to_pkcs1_der().expect("pkcs1");
        let public = private.to_public_key();
        SigningKey {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": B64.encode(public.n().to_bytes_be()),
                "e": B64.encode(public.e().to_bytes_be()),
            }),
        }
    }

    fn ec(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec key");
        // The uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key_raw();
        SigningKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "EC", "kid": kid, "crv": "P-256",
                "x": B64.encode(&point[1..33]),
                "y": B64.encode(&point[33..65]),
            }),
        }
    }

    /// A token for `sub` with `claims` over the defaults (valid for an hour).
    fn token(&self, sub: &str, claims: serde_json::Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut body = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
            "iat": now, "exp": now + 3600,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), claims.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &body, &self.encoding).expect("sign")
    }
}

fn write_jwks(path: &Path, keys: &[&SigningKey]) {
    let set = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    // Written beside and renamed, as a Secret update or a provider's sync would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, set.to_string()).expect("write jwks");
    std::fs::rename(&tmp, path).expect("rename jwks");
}

async fn server_with(jwks: PathBuf) -> TestServer {
    TestServer::builder()
        .churn()
        .config(move |c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
            c.auth.jwks_file = jwks.display().to_string();
            c.auth.jwt_issuer = ISSUER.into();
            c.auth.jwt_audience = AUDIENCE.into();
            c.auth.jwt_scopes_claim = "scope".into();
            c.auth.jwt_leeway_secs = 0;
            c.auth.jwks_reload_secs = 0.05;
        })
        .start()
        .await
}

/// A header and payload re-signed with nothing: the `none` algorithm.
fn unsigned(token: &str) -> String {
    let mut parts = token.split('.');
    let _ = parts.next();
    let payload = parts.next().unwrap_or_default();
    let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{payload}.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_against_every_kind_of_token() {
    let dir = tempfile::tempdir().expect("dir");
    let jwks = dir.path().join("jwks.json");
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec("ec-1");
    let stranger = SigningKey::ec("ec-1");
    write_jwks(&jwks, &[&rsa, &ec]);
    let server = server_with(jwks.clone()).await;

    // Half the scopes signed with RSA, half with EC: both families are exercised.
    let mut right = HashMap::new();
    for (i, scope) in Scope::ALL.into_iter().enumerate() {
        let signer = if i % 2 == 0 { &rsa } else { &ec };
        let sub = format!("svc-{}", scope.name().replace(':', "-"));
        right.insert(scope, signer.token(&sub, json!({ "scope": scope.name() })));
    }
    let now = chrono::Utc::now().timestamp();
    let admin = json!({ "scope": "admin" });
    let with = |extra: serde_json::Value| {
        let mut claims = admin.clone();
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        claims
    };
    let expired = rsa.token("old", with(json!({ "exp": now - 5 })));
    let not_yet = ec.token("early", with(json!({ "nbf": now + 600 })));
    let wrong_issuer = rsa.token("x", with(json!({ "iss": "https://evil.example/" })));
    let wrong_audience = ec.token("x", with(json!({ "aud": "someone-else" })));
    let foreign = stranger.token("x", admin.clone());
    let none = unsigned(&rsa.token("x", admin.clone()));
    let mut tampered = ec.token("x", json!({ "scope": "infer" }));
    let forged = ec.token("x", admin.clone());
    // The admin payload under the infer token's signature.
    let forged_payload = forged.split('.').nth(1).unwrap_or_default().to_string();
    let parts: Vec<&str> = tampered.split('.').collect();
    tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    // HS256 keyed with the RSA public key's bytes: the classic algorithm confusion.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 600, "scope": "admin" }),
        &EncodingKey::from_secret(rsa.jwk.to_string().as_bytes()),
    )
    .expect("hs256");
    let no_sub = rsa.token("", admin.clone());

    let channel = server.channel().await;
    let refused = [
        ("expired token", expired.as_str()),
        ("not yet valid", not_yet.as_str()),
        ("wrong issuer", wrong_issuer.as_str()),
        ("wrong audience", wrong_audience.as_str()),
        ("unknown signing key", foreign.as_str()),
        ("alg none", none.as_str()),
        ("tampered payload", tampered.as_str()),
        ("HS256 confusion", confused.as_str()),
        ("empty subject", no_sub.as_str()),
        ("not a token", "hunter2"),
    ];
    matrix(&channel, &right, &refused).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_acts_and_a_rotated_out_key_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let jwks = dir.path().join("jwks.json");
    let old = SigningKey::ec("2026-11");
    let new = SigningKey::ec("2026-12");
    write_jwks(&jwks, &[&old]);
    let server = server_with(jwks.clone()).await;
    let mut registry = RegistryClient::new(server.channel().await);

    // Scopes as a list in a nested claim work as well, once configured; here, `scope`.
    let writer = old.token(
        "alice@example.com",
        json!({ "scope": "models:write infer" }),
    );
    let registered = registry
        .register_version(bearer(
            pb::RegisterVersionRequest {
                actor: "root".into(),
                ..crate::lifecycle::upload("churn")
            },
            &writer,
        ))
        .await
        .expect("register with a JWT")
        .into_inner()
        .version
        .expect("version");
    assert_eq!(registered.registered_by, "alice@example.com");

    let later = new.token("bob", json!({ "scope": "infer" }));
    let refused = registry
        .list_models(bearer(pb::ListModelsRequest {}, &later))
        .await
        .expect_err("a key not yet published");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Rotation: the provider publishes the new key and drops the old one.
    write_jwks(&jwks, &[&new]);
    let mut accepted = false;
    for _ in 0..200 {
        if registry
            .list_models(bearer(pb::ListModelsRequest {}, &later))
            .await
            .is_ok()
        {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(accepted, "the new key was never picked up");
    let refused = registry
        .list_models(bearer(pb::ListModelsRequest {}, &writer))
        .await
        .expect_err("the rotated-out key no longer verifies");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // A broken JWKS write is not taken: the last good set stays.
    std::fs::write(&jwks, "{ not json").expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    registry
        .list_models(bearer(pb::ListModelsRequest {}, &later))
        .await
        .expect("the last good JWKS is kept");
    server.stop().await;
}

#[test]
fn a_jwks_file_without_issuer_or_audience_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(["serve"])
        .env_remove("MERCATOR_CONFIG")
        .env("MERCATOR_AUTH__MODE", "required")
        .env("MERCATOR_AUTH__JWKS_FILE", "/etc/mercator/jwks.json")
        .output()
        .expect("run mercator");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth.jwt_issuer must be set when auth.jwks_file is"),
        "{stderr}"
    );
}
