//! `schakel dossier ...` and `schakel request ...`: what a professional of a
//! partner does with dossiers from the command line (partner systems call the
//! same gRPC methods). Every command is decided and logged by the broker as
//! any other call: the CLI sees only what the caller may see.
//!
//! Values are tagged JSON (see `schakel_broker::json`), or `--text`/`--code`/
//! `--date` for the simple kinds.

use std::path::PathBuf;

use anyhow::Context;
use schakel_broker::json::{RegistrationFile, enum_value, value_from_json, value_to_json};
use schakel_proto::v1 as pb;

use crate::connect::Connection;
use crate::text::{enum_short, parse_time, phase, phase_name, show_time};

/// Dossier commands.
#[derive(clap::Subcommand)]
pub enum DossierCommand {
    /// Register a dossier (aanmelding) from a JSON file.
    Register {
        /// The registration (see deploy/examples/registration.json).
        #[arg(long)]
        file: PathBuf,
        /// Makes a retry return the first registration (default: a new UUID).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Read a dossier: the fields the policy releases to you, and the others withheld.
    Show {
        dossier_id: String,
        /// Processing purpose: triage, case_building, case_direction, follow_up.
        #[arg(long, default_value = "case_building")]
        purpose: String,
        /// Catalogue paths or prefixes ending in "." (default: everything).
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Include superseded contributions.
        #[arg(long)]
        history: bool,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the dossiers of your organisation's circles.
    List {
        /// Only these phases.
        #[arg(long = "phase")]
        phases: Vec<String>,
        /// Only this district.
        #[arg(long, default_value = "")]
        district: String,
    },
    /// Move a dossier to its next phase.
    Advance {
        dossier_id: String,
        /// The phase you believe it is in.
        #[arg(long)]
        from: String,
        /// The phase to move to.
        #[arg(long)]
        to: String,
        /// Track decided at triage (2 or 3), when moving to case_direction.
        #[arg(long)]
        track: Option<u8>,
        /// Why (kept in the dossier, not in the audit log).
        #[arg(long)]
        reason: String,
        /// The reason code (kept in the audit log too): no_new_violence,
        /// new_violence, family_moved, family_withdrew, transferred, goals_confirmed.
        #[arg(long)]
        reason_code: Option<String>,
    },
    /// Add an organisation to, or remove it from, the need-to-know circle.
    Participant {
        #[command(subcommand)]
        command: ParticipantCommand,
    },
    /// Contribute a value to a field.
    Contribute {
        dossier_id: String,
        /// Catalogue path, e.g. police.interventions.
        #[arg(long)]
        field: String,
        #[command(flatten)]
        value: ValueArgs,
        /// For per-person fields: the pseudonymous person id.
        #[arg(long, default_value = "")]
        person: String,
        /// Processing purpose.
        #[arg(long, default_value = "case_building")]
        purpose: String,
        /// Your organisation's earlier contribution this one corrects.
        #[arg(long, default_value = "")]
        supersedes: String,
    },
}

/// Circle commands.
#[derive(clap::Subcommand)]
pub enum ParticipantCommand {
    /// Add an organisation to the circle.
    Add {
        dossier_id: String,
        /// Organisation id.
        #[arg(long)]
        organisation: String,
    },
    /// Remove an organisation from the circle.
    Remove {
        dossier_id: String,
        /// Organisation id.
        #[arg(long)]
        organisation: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// One value, in one of its forms.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct ValueArgs {
    /// A text value.
    #[arg(long)]
    text: Option<String>,
    /// A code value, e.g. hoog.
    #[arg(long)]
    code: Option<String>,
    /// A date value (YYYY-MM-DD, YYYY-MM or YYYY).
    #[arg(long)]
    date: Option<String>,
    /// Any value as tagged JSON, e.g. '{"list": [{"code": "fysiek"}]}'.
    #[arg(long)]
    json: Option<String>,
}

impl ValueArgs {
    fn to_value(&self) -> anyhow::Result<pb::FieldValue> {
        let value = match (&self.text, &self.code, &self.date, &self.json) {
            (Some(t), ..) => serde_json::json!({ "text": t }),
            (_, Some(c), ..) => serde_json::json!({ "code": c }),
            (_, _, Some(d), _) => serde_json::json!({ "date": d }),
            (_, _, _, Some(j)) => serde_json::from_str(j).context("--json is not JSON")?,
            _ => anyhow::bail!("give one of --text, --code, --date, --json"),
        };
        Ok(value_from_json(&value, "value")?)
    }
}

/// Information request (vraag tot infodeling) commands.
#[derive(clap::Subcommand)]
pub enum RequestCommand {
    /// Ask another organisation of the circle for fields.
    Create {
        dossier_id: String,
        /// Addressee organisation id.
        #[arg(long)]
        to: String,
        /// Catalogue paths or prefixes ending in "."; at least one.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
        /// Processing purpose.
        #[arg(long, default_value = "case_building")]
        purpose: String,
        /// Why the information is needed.
        #[arg(long)]
        justification: String,
        /// Answer wanted by (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        due: String,
    },
    /// Your organisation's requests: inbox, outbox or both.
    List {
        #[arg(long, value_enum, default_value_t = Box_::All)]
        r#box: Box_,
        /// Only the requests of this dossier.
        #[arg(long, default_value = "")]
        dossier: String,
        /// Only open requests past their due date.
        #[arg(long)]
        overdue: bool,
    },
    /// Answer a request with a contribution.
    Answer {
        request_id: String,
        /// Catalogue path answered.
        #[arg(long)]
        field: String,
        #[command(flatten)]
        value: ValueArgs,
        /// For per-person fields: the pseudonymous person id.
        #[arg(long, default_value = "")]
        person: String,
        /// Optional note with the answer.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Decline a request.
    Decline {
        request_id: String,
        /// professional_secrecy, no_information, not_needed, safety, other.
        #[arg(long)]
        reason: String,
        /// Short explanation.
        #[arg(long, default_value = "")]
        explanation: String,
    },
}

/// Which requests to list.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Box_ {
    Inbox,
    Outbox,
    All,
}

fn track(spoor: u8) -> anyhow::Result<pb::Track> {
    schakel_broker::json::track(spoor).context("--track is 1, 2 or 3")
}

fn track_name(value: i32) -> String {
    enum_short(value, pb::Track::as_str_name, "TRACK_")
}

pub(crate) fn print_dossier_line(d: &pb::Dossier) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{} participants",
        d.dossier_id,
        d.district,
        phase_name(d.phase),
        track_name(if d.track != 0 {
            d.track
        } else {
            d.requested_track
        }),
        show_time(d.registered_at.as_ref()),
        d.participants.len()
    );
}

fn print_request(r: &pb::InformationRequest) {
    println!(
        "{}\t{}\t{}\t{} -> {}\t{}\tdue {}{}",
        r.information_request_id,
        r.dossier_id,
        enum_short(
            r.status,
            pb::InformationRequestStatus::as_str_name,
            "INFORMATION_REQUEST_STATUS_"
        ),
        r.from_organisation_id,
        r.to_organisation_id,
        r.fields.join(","),
        show_time(r.due_at.as_ref()),
        if r.overdue { "\tOVERDUE" } else { "" }
    );
}

fn print_read(r: &pb::GetDossierResponse) {
    if let Some(d) = &r.dossier {
        println!("dossier: {}", d.dossier_id);
        println!("phase: {}", phase_name(d.phase));
        println!("district: {}", d.district);
        println!("persons: {}", d.person_ids.join(","));
    }
    println!(
        "decision: {}",
        enum_short(r.decision, pb::Decision::as_str_name, "DECISION_")
    );
    let basis = r.legal_basis.clone().unwrap_or_default();
    println!(
        "legal_basis: {} v{}",
        basis.agreement_id, basis.agreement_version
    );
    println!("policy_version: {}", r.policy_version);
    println!("audit_index: {}", r.audit_index);
    for field in &r.released {
        if field.contributions.is_empty() {
            println!("released\t{}\t(empty)", field.path);
        }
        for c in &field.contributions {
            let value = c
                .value
                .as_ref()
                .map(|v| value_to_json(v).to_string())
                .unwrap_or_else(|| "(retracted)".into());
            let person = if c.person_id.is_empty() {
                String::new()
            } else {
                format!("[{}]", c.person_id)
            };
            println!(
                "released\t{}{person}\t{value}\t{}\t{}",
                field.path,
                c.source_partner_type,
                show_time(c.contributed_at.as_ref())
            );
        }
    }
    for w in &r.withheld {
        println!(
            "withheld\t{}\t{}",
            w.path,
            enum_short(
                w.reason,
                pb::AccessDenialReason::as_str_name,
                "ACCESS_DENIAL_REASON_"
            )
        );
    }
}

/// Runs a dossier command.
pub async fn run_dossier(connection: &Connection, command: DossierCommand) -> anyhow::Result<()> {
    let mut broker = connection.broker().await?;
    match command {
        DossierCommand::Register {
            file,
            idempotency_key,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let registration: RegistrationFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a registration", file.display()))?;
            let key = idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let request = registration
                .to_request(&key, now)
                .with_context(|| format!("in {}", file.display()))?;
            let response = broker.register_dossier(request).await?.into_inner();
            let dossier = response.dossier.unwrap_or_default();
            println!("dossier_id: {}", dossier.dossier_id);
            let basis = response.legal_basis.unwrap_or_default();
            println!(
                "legal_basis: {} v{}",
                basis.agreement_id, basis.agreement_version
            );
            for p in response.persons {
                println!("person: {}\t{}", p.client_ref, p.person_id);
            }
            println!("audit_index: {}", response.audit_index);
        }
        DossierCommand::Show {
            dossier_id,
            purpose,
            fields,
            history,
            json,
        } => {
            let response = broker
                .get_dossier(pb::GetDossierRequest {
                    dossier_id,
                    purpose,
                    fields,
                    person_ids: vec![],
                    include_history: history,
                })
                .await?
                .into_inner();
            if json {
                println!("{}", read_to_json(&response));
            } else {
                print_read(&response);
            }
        }
        DossierCommand::List { phases, district } => {
            let phases: Vec<i32> = phases
                .iter()
                .map(|p| phase(p).map(|p| p as i32))
                .collect::<anyhow::Result<_>>()?;
            let mut page_token = String::new();
            loop {
                let response = broker
                    .list_dossiers(pb::ListDossiersRequest {
                        page: Some(pb::PageRequest {
                            page_size: 100,
                            page_token: page_token.clone(),
                        }),
                        phases: phases.clone(),
                        district: district.clone(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                response.dossiers.iter().for_each(print_dossier_line);
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
        }
        DossierCommand::Advance {
            dossier_id,
            from,
            to,
            track: decided,
            reason,
            reason_code,
        } => {
            let reason_code = reason_code
                .map(|code| {
                    enum_value(
                        "PHASE_REASON",
                        &code,
                        pb::PhaseReason::from_str_name,
                        "--reason-code",
                    )
                })
                .transpose()?
                .unwrap_or_default();
            let response = broker
                .advance_phase(pb::AdvancePhaseRequest {
                    dossier_id,
                    expected_phase: phase(&from)? as i32,
                    target_phase: phase(&to)? as i32,
                    track: decided.map(track).transpose()?.unwrap_or_default() as i32,
                    reason,
                    reason_code: reason_code as i32,
                })
                .await?
                .into_inner();
            print_dossier_line(&response.dossier.unwrap_or_default());
        }
        DossierCommand::Participant { command } => match command {
            ParticipantCommand::Add {
                dossier_id,
                organisation,
            } => {
                broker
                    .add_participant(pb::AddParticipantRequest {
                        dossier_id,
                        organisation_id: organisation.clone(),
                    })
                    .await?;
                println!("added {organisation}");
            }
            ParticipantCommand::Remove {
                dossier_id,
                organisation,
                reason,
            } => {
                broker
                    .remove_participant(pb::RemoveParticipantRequest {
                        dossier_id,
                        organisation_id: organisation.clone(),
                        reason,
                    })
                    .await?;
                println!("removed {organisation}");
            }
        },
        DossierCommand::Contribute {
            dossier_id,
            field,
            value,
            person,
            purpose,
            supersedes,
        } => {
            let response = broker
                .contribute(pb::ContributeRequest {
                    dossier_id,
                    purpose,
                    contributions: vec![pb::ContributionInput {
                        path: field,
                        person_id: person,
                        value: Some(value.to_value()?),
                        supersedes_contribution_id: supersedes,
                    }],
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                })
                .await?
                .into_inner();
            for c in response.contributions {
                println!("contribution: {}\t{}", c.contribution_id, c.path);
            }
            println!("audit_index: {}", response.audit_index);
        }
    }
    Ok(())
}

/// Runs an information request command.
pub async fn run_request(connection: &Connection, command: RequestCommand) -> anyhow::Result<()> {
    let mut broker = connection.broker().await?;
    let request = match command {
        RequestCommand::Create {
            dossier_id,
            to,
            fields,
            purpose,
            justification,
            due,
        } => {
            broker
                .request_information(pb::RequestInformationRequest {
                    dossier_id,
                    to_organisation_id: to,
                    fields,
                    person_ids: vec![],
                    purpose,
                    justification,
                    due_at: Some(parse_time("due", &due)?),
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                })
                .await?
                .into_inner()
                .information_request
        }
        RequestCommand::List {
            r#box,
            dossier,
            overdue,
        } => {
            let r#box = match r#box {
                Box_::Inbox => pb::InformationRequestBox::Inbox,
                Box_::Outbox => pb::InformationRequestBox::Outbox,
                Box_::All => pb::InformationRequestBox::All,
            };
            let mut page_token = String::new();
            loop {
                let response = broker
                    .list_information_requests(pb::ListInformationRequestsRequest {
                        page: Some(pb::PageRequest {
                            page_size: 100,
                            page_token: page_token.clone(),
                        }),
                        r#box: r#box as i32,
                        dossier_id: dossier.clone(),
                        statuses: vec![],
                        overdue_only: overdue,
                    })
                    .await?
                    .into_inner();
                response.information_requests.iter().for_each(print_request);
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
            return Ok(());
        }
        RequestCommand::Answer {
            request_id,
            field,
            value,
            person,
            note,
        } => {
            broker
                .answer_information_request(pb::AnswerInformationRequestRequest {
                    information_request_id: request_id,
                    contributions: vec![pb::ContributionInput {
                        path: field,
                        person_id: person,
                        value: Some(value.to_value()?),
                        supersedes_contribution_id: String::new(),
                    }],
                    declined_fields: vec![],
                    note,
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                })
                .await?
                .into_inner()
                .information_request
        }
        RequestCommand::Decline {
            request_id,
            reason,
            explanation,
        } => {
            let reason = enum_value(
                "INFORMATION_REQUEST_DECLINE_REASON",
                &reason,
                pb::InformationRequestDeclineReason::from_str_name,
                "--reason",
            )?;
            broker
                .decline_information_request(pb::DeclineInformationRequestRequest {
                    information_request_id: request_id,
                    reason: reason as i32,
                    explanation,
                })
                .await?
                .into_inner()
                .information_request
        }
    };
    print_request(&request.unwrap_or_default());
    Ok(())
}

/// A read as JSON: released values tagged, withheld fields with their reason.
fn read_to_json(r: &pb::GetDossierResponse) -> serde_json::Value {
    let dossier = r.dossier.clone().unwrap_or_default();
    let basis = r.legal_basis.clone().unwrap_or_default();
    serde_json::json!({
        "dossier_id": dossier.dossier_id,
        "phase": phase_name(dossier.phase),
        "person_ids": dossier.person_ids,
        "policy_version": r.policy_version,
        "legal_basis": {"agreement_id": basis.agreement_id, "version": basis.agreement_version},
        "audit_index": r.audit_index,
        "released": r.released.iter().map(|f| serde_json::json!({
            "path": f.path,
            "contributions": f.contributions.iter().map(|c| serde_json::json!({
                "contribution_id": c.contribution_id,
                "person_id": c.person_id,
                "value": c.value.as_ref().map(value_to_json),
                "source_partner_type": c.source_partner_type,
                "source_organisation_id": c.source_organisation_id,
                "contributed_at": show_time(c.contributed_at.as_ref()),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "withheld": r.withheld.iter().map(|w| serde_json::json!({
            "path": w.path,
            "reason": enum_short(w.reason, pb::AccessDenialReason::as_str_name, "ACCESS_DENIAL_REASON_"),
        })).collect::<Vec<_>>(),
    })
}
