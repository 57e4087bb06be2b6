//! The policy service as the broker's [`PolicySource`] port in the same
//! process: the very next call after an activation uses the new version.

use std::sync::{Arc, Mutex};

use schakel_kit::ports::{PolicySnapshot, PolicySource};
use tokio::sync::watch;

use crate::{Active, Policies};

/// Follows the active version of a [`Policies`] service of this process.
pub struct LocalPolicy {
    source: watch::Receiver<Arc<Active>>,
    cache: Mutex<Option<Arc<PolicySnapshot>>>,
}

impl Policies {
    /// The active policy as a [`PolicySource`].
    pub fn source(&self) -> LocalPolicy {
        LocalPolicy {
            source: self.subscribe(),
            cache: Mutex::new(None),
        }
    }
}

impl PolicySource for LocalPolicy {
    fn current(&self) -> Arc<PolicySnapshot> {
        let active = self.source.borrow().clone();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some(snapshot) if snapshot.version == active.version.version => snapshot.clone(),
            _ => {
                let snapshot = Arc::new(PolicySnapshot {
                    version: active.version.version,
                    table: Arc::new(active.compiled.table.clone()),
                    fields: Arc::new(active.compiled.policy.fields.clone()),
                });
                *cache = Some(snapshot.clone());
                snapshot
            }
        }
    }
}
