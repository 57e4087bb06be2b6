//! Encryption at rest: AES-256-GCM keys that seal secrets bound to a context
//! (additional authenticated data), so that a value moved to another place
//! no longer opens.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A 256-bit key that encrypts secrets at rest: the master keys (identity's
/// signing keys, the broker's dossier keys) and the broker's per-dossier data
/// keys. Master keys live outside the database: a file or a secret store.
#[derive(Clone)]
pub struct SecretKey(aes_gcm::Key<Aes256Gcm>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes.into())
    }

    /// From its standard base64 text form (32 bytes).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        Ok(Self::from_bytes(
            crate::config::key_from_base64(text).context("key")?,
        ))
    }

    /// From its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.into())
    }

    /// Its standard base64 text form.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Encrypts `plaintext` bound to `context` (nonce || ciphertext).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = Aes256Gcm::new(&self.0)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok([nonce.as_slice(), &ciphertext].concat())
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > 12, "sealed value too short");
        let (nonce, ciphertext) = sealed.split_at(12);
        Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| anyhow::anyhow!("decryption failed (wrong master key or tampered data)"))
    }
}

impl SecretKey {
    /// A short public identifier of the key (16 hex digits of a SHA-256 over
    /// it), stored beside what it sealed so that rotation knows which key to use.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"schakel key id\0")
            .chain_update(self.0)
            .finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw key bytes (to seal this key under another one).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = SecretKey::generate();
        let sealed = key
            .seal(b"geheim", b"dossier-1/ggz.diagnosis")
            .expect("seal");
        assert_eq!(
            key.open(&sealed, b"dossier-1/ggz.diagnosis").expect("open"),
            b"geheim"
        );
        assert!(key.open(&sealed, b"dossier-2/ggz.diagnosis").is_err());
        assert!(
            SecretKey::generate()
                .open(&sealed, b"dossier-1/ggz.diagnosis")
                .is_err()
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(key.open(&tampered, b"dossier-1/ggz.diagnosis").is_err());
        assert_ne!(
            key.seal(b"geheim", b"c").expect("seal"),
            key.seal(b"geheim", b"c").expect("seal")
        );
    }

    #[test]
    fn keys_round_trip_and_have_stable_ids() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&key.to_base64()).expect("base64");
        assert_eq!(key.id(), again.id());
        assert_eq!(key.id().len(), 16);
        assert_ne!(key.id(), SecretKey::generate().id());
        assert_eq!(SecretKey::from_bytes(key.to_bytes()).id(), key.id());
    }
}
