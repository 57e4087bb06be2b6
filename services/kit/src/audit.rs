//! Writing to the audit log from any service (DESIGN.md invariants 1 and 9).
//!
//! Callers fail closed: a decision or change whose entry could not be appended
//! is not acted on. [`AuditSink`] is what services depend on; the audit service
//! provides an in-process sink (one process, `schakel dev`) and [`GrpcAuditSink`]
//! calls a remote audit service (microservices mode).

use std::{future::Future, pin::Pin};

use opentelemetry::trace::TraceContextExt;
use schakel_proto::v1::{self as pb, audit_service_client::AuditServiceClient};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::client::CallContext;

/// Why an entry was not appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log could not be reached or could not commit durably.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// The log refused the entry as malformed (a bug in the caller).
    #[error("audit entry refused: {0}")]
    Rejected(String),
}

impl From<AuditError> for Status {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Unavailable(_) => crate::error::with_reason(
                Code::Unavailable,
                "AUDIT_UNAVAILABLE",
                "the audit log is unavailable; nothing was done or disclosed",
            ),
            AuditError::Rejected(reason) => {
                crate::error::internal(&anyhow::anyhow!("audit entry refused: {reason}"))
            }
        }
    }
}

/// The result of a successful append.
pub type AppendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<pb::AppendResponse, AuditError>> + Send + 'a>>;

/// The result of a probe.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>>;

/// Somewhere to append audit entries durably.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends `entry` (index and time unset) under the idempotency key
    /// `append_id`; resolves only once the entry is durably committed.
    fn append(&self, entry: pb::AuditEntry, append_id: String) -> AppendFuture<'_>;

    /// Whether the log can take entries now, without appending one (before
    /// an irreversible change, and to notice that the log is back). A sink
    /// that cannot tell says it cannot.
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async { Err(AuditError::Unavailable("this sink cannot be probed".into())) })
    }
}

/// An audit sink calling `AuditService.Append` over gRPC (mTLS + service token).
#[derive(Clone)]
pub struct GrpcAuditSink {
    client: AuditServiceClient<InterceptedService<Channel, CallContext>>,
}

impl GrpcAuditSink {
    /// A sink over `channel`, authenticating calls with `context`.
    pub fn new(channel: Channel, context: CallContext) -> Self {
        Self {
            client: AuditServiceClient::with_interceptor(channel, context),
        }
    }
}

impl AuditSink for GrpcAuditSink {
    fn append(&self, entry: pb::AuditEntry, append_id: String) -> AppendFuture<'_> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let request = pb::AppendRequest {
                entry: Some(entry),
                append_id,
            };
            match client.append(request).await {
                Ok(response) => Ok(response.into_inner()),
                Err(status) if status.code() == Code::InvalidArgument => {
                    Err(AuditError::Rejected(status.message().to_owned()))
                }
                Err(status) => Err(AuditError::Unavailable(format!("{:?}", status.code()))),
            }
        })
    }

    fn probe(&self) -> ProbeFuture<'_> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .get_checkpoint(pb::GetCheckpointRequest {})
                .await
                .map(drop)
                .map_err(|status| AuditError::Unavailable(format!("{:?}", status.code())))
        })
    }
}

/// A sink that refuses every entry, for offline tools that must not change
/// anything that would need auditing (and fail closed if they tried).
#[derive(Clone, Copy, Debug, Default)]
pub struct OfflineSink;

impl AuditSink for OfflineSink {
    fn append(&self, _entry: pb::AuditEntry, _append_id: String) -> AppendFuture<'_> {
        Box::pin(async {
            Err(AuditError::Unavailable(
                "offline: no audit log connected".into(),
            ))
        })
    }
}

/// A new idempotency key for one decision or change: a UUIDv7, whose leading
/// 48 bits are the time in milliseconds, so that the audit log's unique index
/// on append ids grows at its right edge instead of dirtying a random page
/// per entry (which made each group commit write several times more pages).
pub fn new_append_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The W3C trace id of the current span (32 hex digits), or empty.
pub fn current_trace_id() -> String {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        String::new()
    }
}

/// An entry for `action` by `actor`, appended by `service`, with the current
/// trace id, the given decision and `attributes` (codes only); callers fill in
/// target, purpose and fields.
pub fn entry(
    actor: pb::Actor,
    action: pb::AuditAction,
    decision: pb::Decision,
    service: &str,
    attributes: &[(&str, &str)],
) -> pb::AuditEntry {
    pb::AuditEntry {
        actor: Some(actor),
        action: action as i32,
        decision: decision as i32,
        trace_id: current_trace_id(),
        service: service.into(),
        attributes: attributes
            .iter()
            .map(|(key, value)| pb::AuditAttribute {
                key: (*key).into(),
                value: (*value).into(),
            })
            .collect(),
        ..Default::default()
    }
}
