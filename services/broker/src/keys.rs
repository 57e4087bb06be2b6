//! Encryption at rest of dossier content (DESIGN.md: values encrypted under a
//! per-dossier data key, wrapped by a master key from configuration).
//!
//! - Each dossier has its own random data key, stored only wrapped (sealed)
//!   by a master key, with the master key's id, bound to the dossier id.
//! - Each value is sealed by the data key with additional authenticated data
//!   naming its dossier, field path, person and contribution: a value copied
//!   to another field, person or dossier no longer opens.
//! - Master keys rotate: new data keys are wrapped by the current key; older
//!   keys stay configured to unwrap until [`Keyring::rewrap`] moved their
//!   dossiers over. Erasing a dossier deletes its wrapped key (crypto-shredding).

use std::collections::HashMap;

use anyhow::Context;
use schakel_kit::crypto::SecretKey;

/// A dossier's data key as stored: sealed by the master key `key_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// The sealed data key.
    pub sealed: Vec<u8>,
}

/// The master keys: the current one wraps, every configured one unwraps.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretKey,
    all: HashMap<String, SecretKey>,
}

fn wrap_context(dossier_id: &str) -> Vec<u8> {
    format!("schakel dossier key\0{dossier_id}").into_bytes()
}

/// What a value is bound to.
pub fn value_context(
    dossier_id: &str,
    path: &str,
    person_id: &str,
    contribution_id: &str,
) -> Vec<u8> {
    format!("schakel value\0{dossier_id}\0{path}\0{person_id}\0{contribution_id}").into_bytes()
}

impl Keyring {
    /// `current` wraps new data keys; `older` keys still unwrap.
    pub fn new(current: SecretKey, older: impl IntoIterator<Item = SecretKey>) -> Self {
        let mut all: HashMap<String, SecretKey> = older.into_iter().map(|k| (k.id(), k)).collect();
        all.insert(current.id(), current.clone());
        Self { current, all }
    }

    /// The current master key (to derive the lookup key from).
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// Id of the current master key.
    pub fn current_id(&self) -> String {
        self.current.id()
    }

    /// A new data key for `dossier_id`, and its wrapped form to store.
    pub fn new_data_key(&self, dossier_id: &str) -> anyhow::Result<(SecretKey, WrappedKey)> {
        let key = SecretKey::generate();
        let wrapped = self.wrap(&key, dossier_id)?;
        Ok((key, wrapped))
    }

    fn wrap(&self, key: &SecretKey, dossier_id: &str) -> anyhow::Result<WrappedKey> {
        Ok(WrappedKey {
            key_id: self.current.id(),
            sealed: self
                .current
                .seal(&key.to_bytes(), &wrap_context(dossier_id))?,
        })
    }

    /// The data key of `dossier_id` from its stored form.
    pub fn unwrap(&self, wrapped: &WrappedKey, dossier_id: &str) -> anyhow::Result<SecretKey> {
        let master = self
            .all
            .get(&wrapped.key_id)
            .with_context(|| format!("master key {} is not configured", wrapped.key_id))?;
        let bytes = master.open(&wrapped.sealed, &wrap_context(dossier_id))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("a data key is 32 bytes"))?;
        Ok(SecretKey::from_bytes(bytes))
    }

    /// Re-wraps a data key under the current master key (rotation); `None`
    /// when it already is.
    pub fn rewrap(
        &self,
        wrapped: &WrappedKey,
        dossier_id: &str,
    ) -> anyhow::Result<Option<WrappedKey>> {
        if wrapped.key_id == self.current.id() {
            return Ok(None);
        }
        let key = self.unwrap(wrapped, dossier_id)?;
        Ok(Some(self.wrap(&key, dossier_id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_where_they_were_sealed() {
        let ring = Keyring::new(SecretKey::generate(), []);
        let (key, wrapped) = ring.new_data_key("d1").expect("key");
        let context = value_context("d1", "ggz.diagnosis", "", "c1");
        let sealed = key.seal(b"depressie", &context).expect("seal");
        let again = ring.unwrap(&wrapped, "d1").expect("unwrap");
        assert_eq!(again.open(&sealed, &context).expect("open"), b"depressie");
        // Moved to another field, person, contribution or dossier: refused.
        for other in [
            value_context("d1", "police.summary", "", "c1"),
            value_context("d1", "ggz.diagnosis", "p1", "c1"),
            value_context("d1", "ggz.diagnosis", "", "c2"),
            value_context("d2", "ggz.diagnosis", "", "c1"),
        ] {
            assert!(again.open(&sealed, &other).is_err());
        }
        // A wrapped key moved to another dossier does not unwrap.
        assert!(ring.unwrap(&wrapped, "d2").is_err());
    }

    #[test]
    fn master_keys_rotate() {
        let old = SecretKey::generate();
        let ring = Keyring::new(old.clone(), []);
        let (key, wrapped) = ring.new_data_key("d1").expect("key");
        let new = SecretKey::generate();
        let rotated = Keyring::new(new.clone(), [old.clone()]);
        assert_eq!(
            rotated
                .unwrap(&wrapped, "d1")
                .expect("old still opens")
                .id(),
            key.id()
        );
        let rewrapped = rotated
            .rewrap(&wrapped, "d1")
            .expect("rewrap")
            .expect("changed");
        assert_eq!(rewrapped.key_id, new.id());
        assert!(rotated.rewrap(&rewrapped, "d1").expect("rewrap").is_none());
        // Once the old key is gone, only rewrapped dossiers open.
        let only_new = Keyring::new(new, []);
        assert_eq!(
            only_new.unwrap(&rewrapped, "d1").expect("opens").id(),
            key.id()
        );
        let err = only_new.unwrap(&wrapped, "d1").expect_err("old key gone");
        assert!(err.to_string().contains(&old.id()), "{err}");
    }
}
