//! Token signing keys: Ed25519, encrypted at rest with the master key
//! (AES-256-GCM), rotated on demand. A rotation withdraws the old key at
//! once: the tokens it signed stop working wherever they are verified.

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::EncodingKey;
use schakel_kit::{
    auth::{Jwk, JwkSet},
    db::Database,
    time::Clock,
};
use sha2::{Digest, Sha256};
use sqlx::Row;

pub use schakel_kit::crypto::SecretKey as MasterKey;

/// The RFC 7638 JWK thumbprint of an Ed25519 public key, used as `kid`.
pub fn thumbprint(public_key: &[u8]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `signing_keys.active` of the key that signs.
const ACTIVE: i64 = 1;
/// `signing_keys.active` of the key that signs after the next rotation.
const NEXT: i64 = 2;

/// The signing keys in the identity database.
#[derive(Clone)]
pub struct KeyStore {
    db: Database,
    master: MasterKey,
    clock: Clock,
}

impl KeyStore {
    /// A key store; call [`ensure_active`](Self::ensure_active) before signing.
    pub fn new(db: Database, master: MasterKey, clock: Clock) -> Self {
        Self { db, master, clock }
    }

    /// Creates the signing key and the next key if they are missing.
    pub async fn ensure_active(&self) -> anyhow::Result<()> {
        for state in [ACTIVE, NEXT] {
            let present: Option<String> =
                sqlx::query_scalar("SELECT kid FROM signing_keys WHERE active = $1")
                    .bind(state)
                    .fetch_optional(self.db.pool())
                    .await?;
            if present.is_none() {
                let mut tx = self.db.pool().begin().await?;
                match self.insert_new(&mut tx, state).await {
                    Ok(_) => tx.commit().await?,
                    // Another instance created it at the same moment: fine.
                    Err(_) => tx.rollback().await?,
                }
            }
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE active IN (1, 2)")
                .fetch_one(self.db.pool())
                .await?;
        anyhow::ensure!(
            count == 2,
            "expected an active and a next signing key, found {count}"
        );
        Ok(())
    }

    async fn insert_new(
        &self,
        conn: &mut sqlx::AnyConnection,
        state: i64,
    ) -> anyhow::Result<String> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = signing.verifying_key().to_bytes();
        let kid = thumbprint(&public);
        let sealed = self.master.seal(&signing.to_bytes(), kid.as_bytes())?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, public_key, private_key_enc, active, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(public.to_vec())
        .bind(sealed)
        .bind(state)
        .bind(self.clock.now())
        .execute(&mut *conn)
        .await
        .context("inserting signing key")?;
        Ok(kid)
    }

    /// The active key's id and its JWT encoding key.
    pub async fn active(&self) -> anyhow::Result<(String, EncodingKey)> {
        let row = sqlx::query("SELECT kid, private_key_enc FROM signing_keys WHERE active = 1")
            .fetch_optional(self.db.pool())
            .await?
            .context("no active signing key")?;
        let kid: String = row.try_get("kid")?;
        let sealed: Vec<u8> = row.try_get("private_key_enc")?;
        let seed = self.master.open(&sealed, kid.as_bytes())?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad key length"))?;
        let der = SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding key: {e}"))?;
        Ok((kid, EncodingKey::from_ed_der(der.as_bytes())))
    }

    /// The published keys: the active one and the next one (published ahead,
    /// so that verifiers know it before it signs). Never a retired key.
    pub async fn jwks(&self) -> anyhow::Result<JwkSet> {
        let rows = sqlx::query(
            "SELECT kid, public_key FROM signing_keys \
             WHERE active IN (1, 2) ORDER BY created_at DESC, kid",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let kid: String = row.try_get("kid")?;
            let public: Vec<u8> = row.try_get("public_key")?;
            keys.push(Jwk::ed25519(&kid, &public));
        }
        Ok(JwkSet {
            keys,
            revoked: Vec::new(),
        })
    }

    /// Retires the active key, makes the next key (published since the last
    /// rotation) active, and creates a new next key, on `conn` (the caller's
    /// transaction, which commits together with the audit entry). Returns the
    /// newly active key id.
    pub async fn rotate(&self, conn: &mut sqlx::AnyConnection) -> anyhow::Result<String> {
        sqlx::query("UPDATE signing_keys SET active = NULL, retired_at = $1 WHERE active = 1")
            .bind(self.clock.now())
            .execute(&mut *conn)
            .await?;
        let promoted = sqlx::query("UPDATE signing_keys SET active = 1 WHERE active = 2")
            .execute(&mut *conn)
            .await?;
        anyhow::ensure!(
            promoted.rows_affected() == 1,
            "no next signing key to promote"
        );
        self.insert_new(conn, NEXT).await?;
        let kid: String = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE active = 1")
            .fetch_one(&mut *conn)
            .await?;
        Ok(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_their_context_and_key() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"secret", b"kid-1").expect("seal");
        assert_eq!(key.open(&sealed, b"kid-1").expect("open"), b"secret");
        assert!(key.open(&sealed, b"kid-2").is_err(), "moved to another row");
        assert!(
            MasterKey::generate().open(&sealed, b"kid-1").is_err(),
            "other key"
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(key.open(&tampered, b"kid-1").is_err(), "tampered");
    }

    #[test]
    fn master_key_round_trips_and_rejects_bad_lengths() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).expect("parse");
        let sealed = key.seal(b"x", b"").expect("seal");
        assert_eq!(again.open(&sealed, b"").expect("open"), b"x");
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn thumbprint_matches_rfc_8037_example() {
        // RFC 8037 appendix A.3: thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("b64");
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
