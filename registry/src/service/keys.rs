//! API key management: create (the key is returned once), list, revoke, and find the
//! key a caller presents. Each change is audited with who made it.

use chrono::{DateTime, Utc};

use super::{Registry, actor_or_default};
use crate::Result;
use crate::keys::{self, ApiKey};
use crate::store;

impl Registry {
    /// Creates a key named `name` granting `scopes`, valid until `expires_at`; returns its
    /// record and the key itself, which is not stored and cannot be shown again.
    pub async fn create_key(
        &self,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<(ApiKey, String)> {
        keys::check_new(name, scopes)?;
        let actor = actor_or_default(actor);
        let key = ApiKey {
            name: name.to_string(),
            scopes: scopes.to_vec(),
            created_by: actor.clone(),
            created_at: store::now(),
            expires_at,
            revoked_at: None,
        };
        let secret = keys::generate();
        let mut tx = self.begin_write().await?;
        store::insert_key(&mut tx, &key, &keys::fingerprint(&secret)).await?;
        let detail = serde_json::json!({
            "name": name,
            "scopes": scopes,
            "expires_at": expires_at,
        });
        store::audit(&mut tx, &actor, "create_key", "", None, detail).await?;
        tx.commit().await?;
        Ok((key, secret))
    }

    /// Every key (revoked and expired ones too), by name.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        let mut conn = self.pool.acquire().await?;
        store::list_keys(&mut conn).await
    }

    /// Revokes the key named `name`: refused by every server from its next lookup.
    pub async fn revoke_key(&self, name: &str, actor: &str) -> Result<ApiKey> {
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let key = store::revoke_key(&mut tx, name).await?;
        let detail = serde_json::json!({ "name": name });
        store::audit(&mut tx, &actor, "revoke_key", "", None, detail).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The key whose [`keys::fingerprint`] is `fingerprint`, if the registry knows it
    /// (active or not). Callers hash once and use the fingerprint for their caches too.
    pub async fn find_key(&self, fingerprint: &str) -> Result<Option<ApiKey>> {
        let mut conn = self.pool.acquire().await?;
        store::key_by_hash(&mut conn, fingerprint).await
    }
}
