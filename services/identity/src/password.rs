//! Password and client-secret hashing: argon2id, off the async runtime.
//!
//! Unknown accounts are checked against a dummy hash made with the same
//! parameters, so a failed login takes the same time whether or not the
//! account exists.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use rand::{Rng, distributions::Alphanumeric};
use serde::{Deserialize, Serialize};

/// argon2id cost parameters (defaults: OWASP's m=19 MiB, t=2, p=1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Parallelism.
    pub parallelism: u32,
    /// Hashes computed at once (each takes `memory_kib`): 4 x 19 MiB.
    pub max_concurrent: u32,
    /// Logins waiting for a hashing slot at most; beyond, RESOURCE_EXHAUSTED.
    pub max_waiting: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 4,
            max_waiting: 64,
        }
    }
}

/// Hashes and verifies secrets.
#[derive(Clone)]
pub struct Hasher {
    argon2: Arc<Argon2<'static>>,
    dummy: Arc<String>,
    /// Bounds the memory hashing takes: one permit per hash in progress.
    slots: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Every hashing slot is taken and the queue is full.
#[derive(Debug)]
pub struct Busy;

impl Hasher {
    /// A hasher with `params`; computes the dummy hash once.
    pub fn new(params: &HashParams) -> anyhow::Result<Self> {
        let (max_concurrent, max_waiting) = (params.max_concurrent.max(1), params.max_waiting);
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon2 = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        let dummy = hash_with(&argon2, &generate_secret(32))?;
        Ok(Self {
            argon2,
            dummy: Arc::new(dummy),
            slots: Arc::new(tokio::sync::Semaphore::new(max_concurrent as usize)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: max_waiting as usize,
        })
    }

    /// The PHC string of `secret`.
    pub async fn hash(&self, secret: String) -> anyhow::Result<String> {
        let argon2 = self.argon2.clone();
        let slot = self.slots.clone().acquire_owned().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash_with(&argon2, &secret)
        })
        .await
        .context("hashing task")?
    }

    /// Whether `secret` matches `hash`; with `None` (unknown account) checks
    /// against the dummy hash and returns false, taking the same time.
    /// [`Busy`] when `max_concurrent` hashes run and `max_waiting` wait.
    pub async fn verify(&self, secret: String, hash: Option<String>) -> Result<bool, Busy> {
        let argon2 = self.argon2.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_ref().clone());
        let slot = self.slot().await?;
        let matched = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon2.verify_password(secret.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }

    /// A hashing slot, waiting in a bounded queue.
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let slot = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        slot.map_err(|_| Busy)
    }
}

fn hash_with(argon2: &Argon2<'_>, secret: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// A random alphanumeric secret of `len` characters (~5.95 bits each).
pub fn generate_secret(len: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Hasher {
        Hasher::new(&HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            ..HashParams::default()
        })
        .expect("hasher")
    }

    #[tokio::test]
    async fn past_the_slots_and_the_queue_a_verification_is_refused_unhashed() {
        let hasher = Hasher::new(&HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
            max_waiting: 0,
        })
        .expect("hasher");
        let held = hasher
            .slots
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        assert!(matches!(hasher.verify("x".into(), None).await, Err(Busy)));
        drop(held);
        assert!(matches!(hasher.verify("x".into(), None).await, Ok(false)));
    }

    #[tokio::test]
    async fn verifies_only_the_right_secret() {
        let hasher = fast();
        let hash = hasher
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .expect("a slot")
        );
        assert!(
            !hasher
                .verify("wrong".into(), Some(hash))
                .await
                .expect("a slot")
        );
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let hasher = fast();
        assert!(!hasher.verify(String::new(), None).await.expect("a slot"));
        assert!(
            !hasher
                .verify("anything".into(), Some("not a phc string".into()))
                .await
                .expect("a slot")
        );
    }
}
