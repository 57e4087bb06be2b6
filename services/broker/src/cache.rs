//! What was read of recent dossiers: a dossier's circle, client system,
//! sealed contributions and sealed history at one revision, reused while the
//! dossier's row shows that revision. Every change to them moves it (by
//! trigger, whichever instance or operator made it), and the row itself is
//! read on every call. Values stay sealed here.

use std::{collections::HashMap, sync::Arc};

use schakel_proto::v1 as pb;

use crate::store::ContributionRow;

/// A dossier's history events, sealed: (event id, sealed event).
pub(crate) type SealedEvents = Arc<Vec<crate::store::StoredEvent>>;

/// One dossier's cached parts.
#[derive(Clone, Default)]
pub(crate) struct Content {
    pub(crate) revision: i64,
    pub(crate) participants: Vec<pb::DossierParticipant>,
    pub(crate) persons: Vec<(String, Vec<String>)>,
    pub(crate) contributions: Option<Arc<Vec<ContributionRow>>>,
    pub(crate) events: Option<SealedEvents>,
}

/// Dossiers whose content is kept at most; beyond, the cache starts afresh.
const CONTENT_CACHE_DOSSIERS: usize = 4096;

/// The cache, per dossier id.
#[derive(Default)]
pub(crate) struct Cache(std::sync::Mutex<HashMap<String, Content>>);

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Content>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The circle and persons at `revision`, if cached.
    pub(crate) fn circle(&self, id: &str, revision: i64) -> Option<Content> {
        self.lock()
            .get(id)
            .filter(|c| c.revision == revision)
            .map(|c| Content {
                contributions: None,
                events: None,
                ..c.clone()
            })
    }

    /// One cached part at `revision`.
    pub(crate) fn part<T: Clone>(
        &self,
        id: &str,
        revision: i64,
        part: impl Fn(&Content) -> Option<T>,
    ) -> Option<T> {
        self.lock()
            .get(id)
            .filter(|c| c.revision == revision)
            .and_then(part)
    }

    /// Updates what is kept of a dossier at `revision` (a newer revision
    /// replaces it).
    pub(crate) fn remember(&self, id: &str, revision: i64, update: impl FnOnce(&mut Content)) {
        let mut cache = self.lock();
        if cache.len() >= CONTENT_CACHE_DOSSIERS && !cache.contains_key(id) {
            cache.clear();
        }
        let entry = cache.entry(id.to_owned()).or_default();
        if entry.revision != revision {
            *entry = Content {
                revision,
                ..Default::default()
            };
        }
        update(entry);
    }
}
