//! `schakel audit ...`: the privacy officer's and auditor's commands.

use std::path::PathBuf;

use schakel_proto::v1 as pb;

use crate::{
    audit_verify::{Pinned, verify},
    connect::Connection,
};

/// Audit log commands.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Print the log's origin and checkpoint verifier key (pin it for `verify`).
    Info,
    /// Print the latest signed checkpoint.
    Checkpoint,
    /// Verify the whole log: every entry's hash, every signed root, and
    /// consistency with a checkpoint saved earlier. Exits 1 naming the first bad index.
    Verify {
        /// The checkpoint verifier key to trust ("<name>+<id>+<key>"), pinned
        /// from a source other than the server (required).
        #[arg(long, env = "SCHAKEL_AUDIT_VERIFIER_KEY")]
        verifier_key: Option<String>,
        /// Without a pinned key, trust the one the server names: a first
        /// look only, which proves no more than the log's internal consistency.
        #[arg(long)]
        trust_server_key: bool,
        /// Where the last verified checkpoint of each log is kept, so that a
        /// rolled-back log fails the next run without --since (default:
        /// $XDG_STATE_HOME/schakel or ~/.local/state/schakel).
        #[arg(long, env = "SCHAKEL_AUDIT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The log origin to require (default: the server's).
        #[arg(long)]
        origin: Option<String>,
        /// A signed checkpoint saved by an earlier run: the log must extend it.
        #[arg(long)]
        since: Option<PathBuf>,
        /// Save the verified checkpoint here (for the next `--since`).
        #[arg(long)]
        save: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Search the log (privacy officer), newest first.
    Query {
        #[arg(long, default_value = "")]
        dossier: String,
        /// Pseudonymous person id.
        #[arg(long, default_value = "")]
        person: String,
        /// Acting organisation id.
        #[arg(long, default_value = "")]
        organisation: String,
        /// Acting user or service account id.
        #[arg(long, default_value = "")]
        subject: String,
        /// Only this action, as printed (e.g. DOSSIER_ERASE); repeatable.
        #[arg(long = "action", value_parser = parse_action)]
        actions: Vec<pb::AuditAction>,
        /// Only this decision (GRANTED, PARTIALLY_GRANTED, DENIED); repeatable.
        #[arg(long = "decision", value_parser = parse_decision)]
        decisions: Vec<pb::Decision>,
        /// Most entries to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// GDPR art. 15 report for one data subject (privacy officer).
    Report {
        /// Pseudonymous person id (repeatable: one per dossier).
        #[arg(long = "person", required = true)]
        persons: Vec<String>,
        /// Your reference for the request (a case number, not a name).
        #[arg(long, default_value = "")]
        reference: String,
        /// Restrict (GDPR art. 23) what these partner types received or supplied (repeatable).
        #[arg(long = "restrict-partner-type")]
        restrict_partner_types: Vec<String>,
        /// Ground for the restriction.
        #[arg(long, value_enum, default_value = "protection-of-others")]
        ground: Ground,
        /// Why disclosure would do harm (required with a restriction; logged only as a hash).
        #[arg(long, default_value = "")]
        justification: String,
    },
}

/// GDPR art. 23 grounds.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Ground {
    ProtectionOfDataSubject,
    ProtectionOfOthers,
    CriminalInvestigation,
    JudicialProceedings,
}

impl Ground {
    fn to_proto(self) -> pb::RestrictionGround {
        match self {
            Ground::ProtectionOfDataSubject => pb::RestrictionGround::ProtectionOfDataSubject,
            Ground::ProtectionOfOthers => pb::RestrictionGround::ProtectionOfOthers,
            Ground::CriminalInvestigation => pb::RestrictionGround::CriminalInvestigation,
            Ground::JudicialProceedings => pb::RestrictionGround::JudicialProceedings,
        }
    }
}

fn action_name(action: i32) -> String {
    pb::AuditAction::try_from(action).map_or_else(
        |_| action.to_string(),
        |a| {
            a.as_str_name()
                .trim_start_matches("AUDIT_ACTION_")
                .to_owned()
        },
    )
}

/// An action by the name `query` prints (any case, `-` for `_`).
fn parse_action(name: &str) -> Result<pb::AuditAction, String> {
    let wanted = format!("AUDIT_ACTION_{}", name.to_uppercase().replace('-', "_"));
    match pb::AuditAction::from_str_name(&wanted) {
        Some(action) if action != pb::AuditAction::Unspecified => Ok(action),
        _ => Err(format!(
            "unknown action {name:?}; one of: {}",
            (1..=64)
                .filter_map(|n| pb::AuditAction::try_from(n).ok())
                .map(|a| action_name(a as i32))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A decision by the name `query` prints.
fn parse_decision(name: &str) -> Result<pb::Decision, String> {
    let wanted = format!("DECISION_{}", name.to_uppercase().replace('-', "_"));
    match pb::Decision::from_str_name(&wanted) {
        Some(decision) if decision != pb::Decision::Unspecified => Ok(decision),
        _ => Err(format!(
            "unknown decision {name:?}; one of: GRANTED, PARTIALLY_GRANTED, DENIED"
        )),
    }
}

fn decision_name(decision: i32) -> String {
    pb::Decision::try_from(decision).map_or_else(
        |_| decision.to_string(),
        |d| d.as_str_name().trim_start_matches("DECISION_").to_owned(),
    )
}

pub async fn run(connection: &Connection, command: AuditCommand) -> anyhow::Result<()> {
    let mut audit = connection.audit().await?;
    match command {
        AuditCommand::Info => {
            let info = audit
                .get_log_info(pb::GetLogInfoRequest {})
                .await?
                .into_inner();
            println!("origin: {}", info.origin);
            println!("verifier_key: {}", info.verifier_key);
            println!("first_entry_with_body: {}", info.first_entry_with_body);
        }
        AuditCommand::Checkpoint => {
            let checkpoint = audit
                .get_checkpoint(pb::GetCheckpointRequest {})
                .await?
                .into_inner()
                .checkpoint
                .unwrap_or_default();
            print!("{}", checkpoint.signed_note);
        }
        AuditCommand::Verify {
            verifier_key,
            trust_server_key,
            state_dir,
            origin,
            since,
            save,
            quiet,
        } => {
            let pinned = Pinned {
                key: verifier_key,
                trust_server_key,
                state_dir,
            };
            verify(&mut audit, pinned, origin, since, save, quiet).await?;
        }
        AuditCommand::Query {
            dossier,
            person,
            organisation,
            subject,
            actions,
            decisions,
            limit,
        } => {
            let request = pb::QueryRequest {
                dossier_id: dossier,
                person_id: person,
                organisation_id: organisation,
                subject,
                actions: actions.into_iter().map(|a| a as i32).collect(),
                decisions: decisions.into_iter().map(|d| d as i32).collect(),
                page: Some(pb::PageRequest {
                    page_size: limit,
                    page_token: String::new(),
                }),
                ..Default::default()
            };
            let response = audit.query(request).await?.into_inner();
            for e in response.entries {
                let actor = e.actor.unwrap_or_default();
                let target = e.target.unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\treleased={}\twithheld={}",
                    e.index,
                    e.time.map_or(0, |t| t.seconds),
                    action_name(e.action),
                    decision_name(e.decision),
                    actor.organisation_id,
                    actor.subject,
                    target.dossier_id,
                    e.fields_released.join(","),
                    e.fields_withheld
                        .iter()
                        .map(|w| w.path.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            eprintln!("(this query is audit entry {})", response.audit_index);
        }
        AuditCommand::Report {
            persons,
            reference,
            restrict_partner_types,
            ground,
            justification,
        } => {
            let restrictions = if restrict_partner_types.is_empty() {
                vec![]
            } else {
                vec![pb::ReportRestriction {
                    partner_types: restrict_partner_types,
                    ground: ground.to_proto() as i32,
                    justification,
                    ..Default::default()
                }]
            };
            let request = pb::SubjectReportRequest {
                person_ids: persons,
                request_reference: reference,
                restrictions,
                ..Default::default()
            };
            let report = audit.subject_report(request).await?.into_inner();
            for d in &report.disclosures {
                let kind = pb::DisclosureKind::try_from(d.kind).map_or("?", |k| {
                    if k == pb::DisclosureKind::Supplied {
                        "supplied"
                    } else {
                        "received"
                    }
                });
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\tentry {}",
                    crate::text::show_time(d.time.as_ref()),
                    kind,
                    d.organisation_name,
                    d.partner_type,
                    d.organisation_id,
                    d.purpose,
                    d.field_categories.join(","),
                    d.field_paths.join(","),
                    d.audit_index
                );
            }
            if !report.organisation_scope.is_empty() {
                eprintln!(
                    "(only disclosures by or to organisation {}: a report on the whole chain is made by a privacy officer of the all-seeing partner type)",
                    report.organisation_scope
                );
            }
            for r in &report.restrictions {
                println!(
                    "restricted: {} disclosure(s) withheld",
                    r.disclosures_removed
                );
            }
            eprintln!("(this report is audit entry {})", report.audit_index);
        }
    }
    Ok(())
}
