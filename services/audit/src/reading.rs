//! Who may read which entry bodies, and the record of every such read.
//!
//! Verifying the tree needs no body: tiles, checkpoints and proofs are for
//! anyone authenticated. Bodies are for privacy officers within a
//! [`BodyScope`]; every read of bodies (GetEntries, GetPostings, Query,
//! SubjectReport) is itself appended to the log before it is answered, naming
//! its scope (fail closed: no answer without its record).

use schakel_kit::{
    audit::{entry as new_entry, new_append_id},
    auth::{Caller, Role},
    error,
};
use schakel_proto::v1 as pb;
use tonic::Status;

use crate::{AuditLog, entry, postings};

/// The entries whose bodies a privacy officer may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyScope {
    /// Every entry: a privacy officer of the all-seeing partner type.
    All,
    /// Entries in which this organisation acted or was the target, and the
    /// log's own retention records.
    Organisation(String),
}

/// Actions that name no organisation, dossier or person and that every
/// privacy officer needs to verify the log: the retention frontier.
const PUBLIC_ACTIONS: [pb::AuditAction; 1] = [pb::AuditAction::RetentionApply];

impl BodyScope {
    /// The scope of `caller`: PERMISSION_DENIED for anyone but a privacy
    /// officer (of an organisation).
    pub(crate) fn of(caller: &Caller, all_seeing: &str) -> Result<Self, Status> {
        if !caller.has_role(Role::PrivacyOfficer) || caller.organisation_id.is_empty() {
            return Err(error::permission_denied(
                "ROLE_REQUIRED",
                "audit entries are for privacy officers; tiles, checkpoints and proofs are for everyone",
            ));
        }
        Ok(if caller.partner_type == all_seeing {
            BodyScope::All
        } else {
            BodyScope::Organisation(caller.organisation_id.clone())
        })
    }

    /// The scope as GetLogInfo reports it (NONE for non-officers).
    pub(crate) fn describe(caller: &Caller, all_seeing: &str) -> (pb::BodyScope, String) {
        match Self::of(caller, all_seeing) {
            Ok(BodyScope::All) => (pb::BodyScope::All, String::new()),
            Ok(BodyScope::Organisation(org)) => (pb::BodyScope::Organisation, org),
            Err(_) => (pb::BodyScope::None, String::new()),
        }
    }

    /// Whether the body of `e` is within this scope. Decided on the hashed
    /// body itself, never on the unhashed query columns.
    pub(crate) fn admits(&self, e: &pb::AuditEntry) -> bool {
        match self {
            BodyScope::All => true,
            BodyScope::Organisation(org) => {
                e.actor.as_ref().is_some_and(|a| &a.organisation_id == org)
                    || e.target.as_ref().is_some_and(|t| &t.organisation_id == org)
                    || PUBLIC_ACTIONS.iter().any(|a| *a as i32 == e.action)
            }
        }
    }

    /// The organisation a scoped report is limited to ("" for all).
    pub(crate) fn organisation(&self) -> &str {
        match self {
            BodyScope::All => "",
            BodyScope::Organisation(org) => org,
        }
    }

    /// The attribute value recorded with each read.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            BodyScope::All => "all",
            BodyScope::Organisation(_) => "organisation",
        }
    }
}

/// A read of bodies by one privacy officer in their scope: the only way to
/// answer one is [`Review::record`], which appends its entry first.
pub(crate) struct Review<'a> {
    log: &'a AuditLog,
    caller: &'a Caller,
    scope: BodyScope,
}

impl<'a> Review<'a> {
    /// PERMISSION_DENIED unless `caller` is a privacy officer.
    pub(crate) fn begin(
        log: &'a AuditLog,
        caller: &'a Caller,
        all_seeing: &str,
    ) -> Result<Self, Status> {
        Ok(Self {
            log,
            caller,
            scope: BodyScope::of(caller, all_seeing)?,
        })
    }

    pub(crate) fn scope(&self) -> &BodyScope {
        &self.scope
    }

    pub(crate) fn log(&self) -> &'a AuditLog {
        self.log
    }

    /// A new entry for this review (the caller as actor, granted, the scope
    /// recorded), to fill in and pass to [`Review::record`].
    pub(crate) fn entry(&self, action: pb::AuditAction) -> pb::AuditEntry {
        let mut e = new_entry(
            self.caller.to_actor(),
            action,
            pb::Decision::Granted,
            "audit",
            &[("scope", self.scope.label())],
        );
        if let BodyScope::Organisation(org) = &self.scope {
            e.target = Some(pb::AuditTarget {
                organisation_id: org.clone(),
                ..Default::default()
            });
        }
        e
    }

    /// Appends the review's entry durably; its index.
    pub(crate) async fn record(&self, entry: pb::AuditEntry) -> Result<u64, Status> {
        Ok(self.log.append(entry, new_append_id()).await?.index)
    }
}

fn attribute(key: &str, value: impl ToString) -> pb::AuditAttribute {
    pb::AuditAttribute {
        key: key.into(),
        value: value.to_string(),
    }
}

/// `GetEntries`: every leaf hash of the range; bodies (and, for the
/// all-seeing, the stored index rows) only within the reader's scope.
pub(crate) async fn entries(
    review: Review<'_>,
    req: pb::GetEntriesRequest,
) -> Result<pb::GetEntriesResponse, Status> {
    if req.with_index && *review.scope() != BodyScope::All {
        return Err(error::permission_denied(
            "SCOPE_REQUIRED",
            "the stored query index is for privacy officers of the all-seeing partner type",
        ));
    }
    let mut leaves = review.log().leaves(req.start, req.end).await?;
    let (mut bodies, mut withheld) = (0u64, 0u64);
    for leaf in &mut leaves {
        if !req.with_index {
            leaf.index_row = None;
        }
        if leaf.body_dropped {
            continue;
        }
        // An undecodable body is shown to the all-seeing only: the verifier
        // then names it; nobody else learns anything from it.
        let admitted = match entry::decode(&leaf.entry_bytes) {
            Ok(e) => review.scope().admits(&e),
            Err(_) => *review.scope() == BodyScope::All,
        };
        if admitted {
            bodies += 1;
        } else {
            leaf.entry_bytes = Vec::new();
            leaf.index_row = None;
            leaf.body_withheld = true;
            withheld += 1;
        }
    }
    let mut record = review.entry(pb::AuditAction::EntriesRead);
    let end = req.start + leaves.len() as u64;
    record.attributes.extend([
        attribute("start", req.start),
        attribute("end", end),
        attribute("bodies", bodies),
        attribute("withheld", withheld),
    ]);
    let audit_index = review.record(record).await?;
    Ok(pb::GetEntriesResponse {
        leaves,
        audit_index,
    })
}

/// `GetPostings`: one page of a segment's posting lists (all-seeing only).
pub(crate) async fn postings(
    review: Review<'_>,
    req: pb::GetPostingsRequest,
) -> Result<pb::GetPostingsResponse, Status> {
    if *review.scope() != BodyScope::All {
        return Err(error::permission_denied(
            "SCOPE_REQUIRED",
            "the query index is for privacy officers of the all-seeing partner type",
        ));
    }
    let after = if req.page_token.is_empty() {
        None
    } else {
        let (code, key) = req.page_token.split_once(':').ok_or_else(bad_token)?;
        let kind = postings::kind_of(code)
            .filter(|_| entry::is_code(key))
            .ok_or_else(bad_token)?;
        Some((kind, key))
    };
    let internal = |e: anyhow::Error| error::internal(&e);
    let pool = review.log().database().pool();
    let (sealed, segment_size) = match postings::sealed(pool)
        .await
        .map_err(|e| internal(e.into()))?
    {
        Some((count, size)) => (req.segment < count, size),
        None => (false, 0),
    };
    let (page, more) = if sealed {
        postings::segment_page(pool, req.segment, segment_size, after)
            .await
            .map_err(internal)?
    } else {
        (Vec::new(), false)
    };
    let next_page_token = match page.last() {
        Some((kind, key, _)) if more => format!("{}:{key}", kind.code()),
        _ => String::new(),
    };
    let mut record = review.entry(pb::AuditAction::EntriesRead);
    record.attributes.extend([
        attribute("segment", req.segment),
        attribute("postings", page.len()),
    ]);
    let audit_index = review.record(record).await?;
    Ok(pb::GetPostingsResponse {
        segment: req.segment,
        segment_size,
        sealed,
        postings: page
            .into_iter()
            .map(|(kind, key, indices)| pb::Posting {
                kind: kind.code().into(),
                key,
                indices,
            })
            .collect(),
        audit_index,
        next_page_token,
    })
}

fn bad_token() -> Status {
    error::invalid_argument("page_token", "not a page token of this service")
}
