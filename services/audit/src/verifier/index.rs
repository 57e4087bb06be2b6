//! The all-seeing auditor's check of the query index: the columns stored
//! beside each body and the posting lists of each sealed segment are rebuilt
//! from the verified bodies and compared. Queries and subject reports read
//! only the index, so an entry hidden from it (a blanked dossier column, a
//! deleted posting) is as good as deleted for a privacy officer.

use std::collections::BTreeMap;

use schakel_proto::v1::{self as pb, audit_service_client::AuditServiceClient};
use tonic::client::GrpcService;

use super::VerifyError;
use crate::{entry, postings::Kind};

/// The comparison in progress, segment by segment.
pub(super) struct IndexCheck {
    /// Entries per sealed segment (0: nothing is sealed).
    segment_size: u64,
    /// The lists the current segment's verified bodies call for.
    expected: BTreeMap<(&'static str, String), Vec<u64>>,
    /// The current segment's entries with verified bodies, ascending.
    verified: Vec<u64>,
    /// The first disagreement found so far.
    first: Option<(u64, String)>,
}

/// The first column of two rows that differs.
fn differing_column(stored: &pb::IndexRow, body: &pb::IndexRow) -> Option<&'static str> {
    [
        ("time", stored.time == body.time),
        (
            "actor organisation",
            stored.actor_organisation_id == body.actor_organisation_id,
        ),
        ("actor subject", stored.actor_subject == body.actor_subject),
        (
            "target organisation",
            stored.target_organisation_id == body.target_organisation_id,
        ),
        ("dossier", stored.dossier_id == body.dossier_id),
        ("action", stored.action == body.action),
        ("decision", stored.decision == body.decision),
        ("purpose", stored.purpose == body.purpose),
        ("trace id", stored.trace_id == body.trace_id),
        ("persons", stored.person_ids == body.person_ids),
    ]
    .into_iter()
    .find(|(_, same)| !same)
    .map(|(column, _)| column)
}

impl IndexCheck {
    /// Learns the segment size from the log.
    pub(super) async fn start<T>(client: &mut AuditServiceClient<T>) -> Result<Self, VerifyError>
    where
        T: GrpcService<tonic::body::Body> + Clone,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        let first = client
            .get_postings(pb::GetPostingsRequest {
                segment: 0,
                page_token: String::new(),
            })
            .await?
            .into_inner();
        Ok(Self {
            segment_size: first.segment_size,
            expected: BTreeMap::new(),
            verified: Vec::new(),
            first: None,
        })
    }

    fn note(&mut self, index: u64, reason: String) {
        if self.first.as_ref().is_none_or(|(first, _)| index < *first) {
            self.first = Some((index, reason));
        }
    }

    /// One verified body and its stored index row.
    pub(super) fn entry(
        &mut self,
        index: u64,
        body: &pb::AuditEntry,
        stored: Option<&pb::IndexRow>,
    ) {
        let row = entry::index_row(body);
        match stored {
            None => self.note(index, "no stored index row".into()),
            Some(stored) => {
                if let Some(column) = differing_column(stored, &row) {
                    self.note(index, format!("the stored {column} column differs"));
                }
            }
        }
        let people = row.person_ids.iter().map(|p| (Kind::Person, p));
        let keys = [
            (Kind::ActorOrganisation, &row.actor_organisation_id),
            (Kind::TargetOrganisation, &row.target_organisation_id),
            (Kind::Subject, &row.actor_subject),
            (Kind::Dossier, &row.dossier_id),
        ];
        for (kind, key) in keys.into_iter().chain(people) {
            if !key.is_empty() {
                self.expected
                    .entry((kind.code(), key.clone()))
                    .or_default()
                    .push(index);
            }
        }
        self.verified.push(index);
    }

    /// Called as the tree grows to `size`: a completed segment's postings
    /// are fetched and compared.
    pub(super) async fn reached<T>(
        &mut self,
        client: &mut AuditServiceClient<T>,
        size: u64,
    ) -> Result<(), VerifyError>
    where
        T: GrpcService<tonic::body::Body> + Clone,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        if self.segment_size == 0 || !size.is_multiple_of(self.segment_size) {
            return Ok(());
        }
        let segment = size / self.segment_size - 1;
        let mut stored: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        let mut token = String::new();
        let sealed = loop {
            let page = client
                .get_postings(pb::GetPostingsRequest {
                    segment,
                    page_token: token,
                })
                .await?
                .into_inner();
            for p in page.postings {
                stored.insert((p.kind, p.key), p.indices);
            }
            if page.next_page_token.is_empty() {
                break page.sealed;
            }
            token = page.next_page_token;
        };
        let expected = std::mem::take(&mut self.expected);
        let verified = std::mem::take(&mut self.verified);
        if !sealed {
            // Not sealed yet: queries scan the columns, checked above.
            return Ok(());
        }
        let held = |i: &u64| verified.binary_search(i).is_ok();
        for ((kind, key), indices) in &stored {
            let want = expected
                .get(&(kind_code(kind), key.clone()))
                .map_or(&[][..], Vec::as_slice);
            let have: Vec<u64> = indices.iter().copied().filter(held).collect();
            if let Some(index) = first_difference(&have, want) {
                self.note(
                    index,
                    format!("the posting list ({kind}, {key}) of segment {segment} differs"),
                );
            }
        }
        for ((kind, key), want) in &expected {
            if !stored.contains_key(&((*kind).to_owned(), key.clone())) {
                self.note(
                    want[0],
                    format!("segment {segment} has no posting list ({kind}, {key})"),
                );
            }
        }
        Ok(())
    }

    /// The first disagreement, if any.
    pub(super) fn finish(self) -> Result<(), VerifyError> {
        match self.first {
            Some((index, reason)) => Err(VerifyError::Index { index, reason }),
            None => Ok(()),
        }
    }
}

/// The stored code as the `&'static str` the expected lists are keyed by
/// (an unknown code matches nothing).
fn kind_code(code: &str) -> &'static str {
    Kind::ALL
        .into_iter()
        .map(Kind::code)
        .find(|c| *c == code)
        .unwrap_or("")
}

/// The smallest index in one ascending list and not the other.
fn first_difference(a: &[u64], b: &[u64]) -> Option<u64> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => return Some(a[i]),
            std::cmp::Ordering::Greater => return Some(b[j]),
        }
    }
    a.get(i).or(b.get(j)).copied()
}

#[cfg(test)]
mod tests {
    use super::first_difference;

    #[test]
    fn first_difference_of_sorted_lists() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 3], &[1, 2, 3]), Some(2));
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2]), Some(3));
        assert_eq!(first_difference(&[], &[4]), Some(4));
        assert_eq!(first_difference(&[0, 5], &[1, 5]), Some(0));
    }
}
