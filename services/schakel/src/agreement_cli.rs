//! `schakel agreement ...`: art. 458ter agreements, managed by coordinators,
//! readable by everyone authenticated.
//!
//! Dates are `YYYY-MM-DD` (midnight UTC) or RFC 3339 (`2026-09-01T00:00:00+02:00`).

use std::path::PathBuf;

use anyhow::Context;
use schakel_proto::v1 as pb;

use crate::connect::Connection;
use crate::text::{enum_short, parse_time, show_time};

/// Agreement commands.
#[derive(clap::Subcommand)]
pub enum AgreementCommand {
    /// List agreements (latest version of each).
    List {
        /// Only agreements covering this district.
        #[arg(long, default_value = "")]
        district: String,
        /// Only agreements with this organisation id as party.
        #[arg(long, default_value = "")]
        party: String,
        /// Only this status of the latest version.
        #[arg(long, value_enum)]
        status: Vec<Status>,
        /// Every version, not only the latest.
        #[arg(long)]
        all_versions: bool,
    },
    /// Show one version of an agreement (default: the latest).
    Show {
        agreement_id: String,
        /// The version to show (0 = the latest).
        #[arg(long, default_value_t = 0)]
        agreement_version: u32,
    },
    /// Create a draft agreement (coordinator).
    Create {
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Draft an amendment of the latest approved version (coordinator).
    Amend {
        agreement_id: String,
        /// The latest, approved, version.
        #[arg(long)]
        base_version: u32,
        /// What the amendment changes, in a sentence.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Record the procureur des Konings' reasoned authorisation of a draft (coordinator).
    Approve {
        agreement_id: String,
        /// The draft version to approve.
        #[arg(long)]
        agreement_version: u32,
        /// The prosecutor's office, e.g. "Parket Leuven".
        #[arg(long)]
        office: String,
        /// Name of the procureur des Konings (or substitute) who signed.
        #[arg(long)]
        prosecutor: String,
        /// Date of the authorisation.
        #[arg(long)]
        decided: String,
        /// The parket's reference of the authorisation.
        #[arg(long)]
        reference: String,
        /// Summary of the reasons given.
        #[arg(long)]
        reasons: String,
    },
    /// Revoke an agreement, every version, from now on (coordinator).
    Revoke {
        agreement_id: String,
        /// The latest version, which you reviewed.
        #[arg(long)]
        expected_version: u32,
        #[arg(long, value_enum)]
        reason: Reason,
        #[arg(long)]
        explanation: String,
    },
    /// Ask whether an agreement covers an organisation and purpose (coordinator).
    Check {
        #[arg(long)]
        organisation: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        district: String,
        #[arg(long, value_enum)]
        track: Option<Track>,
        #[arg(long = "violence-form")]
        violence_forms: Vec<String>,
        /// The moment to check (default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

/// What a coordinator writes in an agreement version.
#[derive(clap::Args)]
pub struct TermsArgs {
    #[arg(long)]
    title: String,
    /// Judicial district covered (repeatable).
    #[arg(long = "district", required = true)]
    districts: Vec<String>,
    /// Organisation id of a party (repeatable, at least two).
    #[arg(long = "party", required = true)]
    parties: Vec<String>,
    /// Processing purpose (repeatable), e.g. triage, case_building.
    #[arg(long = "purpose", required = true)]
    purposes: Vec<String>,
    /// Start of validity (inclusive).
    #[arg(long)]
    valid_from: String,
    /// End of validity (exclusive).
    #[arg(long)]
    valid_until: String,
    /// Most dossiers under the agreement (0 = no cap).
    #[arg(long, default_value_t = 0)]
    max_dossiers: u32,
    /// Track covered (repeatable; none = all).
    #[arg(long = "track", value_enum)]
    tracks: Vec<Track>,
    /// Form of violence covered (repeatable; none = all), e.g. partnergeweld.
    #[arg(long = "violence-form")]
    violence_forms: Vec<String>,
    /// The signed agreement: its SHA-256 is recorded, the file is not stored.
    #[arg(long)]
    document: Option<PathBuf>,
    /// Where the signed original is kept (default: the file name).
    #[arg(long)]
    document_location: Option<String>,
    /// How the parties share, in short.
    #[arg(long, default_value = "")]
    modalities: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Status {
    Draft,
    Approved,
    Expired,
    Revoked,
    Superseded,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Track {
    /// Spoor 1.
    Consult,
    /// Spoor 2.
    CaseSupport,
    /// Spoor 3.
    ChainApproach,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Reason {
    ProsecutorWithdrew,
    PartiesEnded,
    Replaced,
    LegalChange,
    Error,
    Other,
}

fn track(t: Track) -> i32 {
    (match t {
        Track::Consult => pb::Track::Consult,
        Track::CaseSupport => pb::Track::CaseSupport,
        Track::ChainApproach => pb::Track::ChainApproach,
    }) as i32
}

fn status_name(value: i32) -> String {
    pb::AgreementStatus::try_from(value)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("AGREEMENT_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| value.to_string())
}

impl TermsArgs {
    fn into_terms(self) -> anyhow::Result<pb::AgreementTerms> {
        let signed_document = match &self.document {
            None => None,
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let location = self.document_location.clone().unwrap_or_else(|| {
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                Some(pb::SignedDocumentRef {
                    sha256: <sha2::Sha256 as sha2::Digest>::digest(&bytes).to_vec(),
                    location,
                })
            }
        };
        Ok(pb::AgreementTerms {
            title: self.title,
            districts: self.districts,
            parties: self
                .parties
                .into_iter()
                .map(|organisation_id| pb::AgreementParty {
                    organisation_id,
                    partner_type: String::new(),
                })
                .collect(),
            statutory_purposes: vec![pb::StatutoryPurpose::IntegrityProtection as i32],
            processing_purposes: self.purposes,
            valid_from: Some(parse_time("valid-from", &self.valid_from)?),
            valid_until: Some(parse_time("valid-until", &self.valid_until)?),
            scope: Some(pb::AgreementScope {
                max_dossiers: self.max_dossiers,
                tracks: self.tracks.into_iter().map(track).collect(),
                violence_forms: self.violence_forms,
            }),
            signed_document,
            modalities: self.modalities,
        })
    }
}

fn print_line(a: &pb::Agreement) {
    let terms = a.terms.clone().unwrap_or_default();
    println!(
        "{}\tv{}\t{}\t{}\t{}\t{}\t{}\t{} parties\t{}",
        a.agreement_id,
        a.version,
        status_name(a.status),
        if a.in_force {
            "in-force"
        } else {
            "not-in-force"
        },
        show_time(terms.valid_from.as_ref()),
        show_time(terms.valid_until.as_ref()),
        terms.districts.join(","),
        terms.parties.len(),
        terms.title
    );
}

fn print_agreement(a: &pb::Agreement, versions: &[pb::AgreementVersionStatus]) {
    let terms = a.terms.clone().unwrap_or_default();
    println!("agreement_id: {}", a.agreement_id);
    println!("version: {}", a.version);
    println!("status: {}", status_name(a.status));
    println!("in_force: {}", a.in_force);
    println!("title: {}", terms.title);
    println!("districts: {}", terms.districts.join(","));
    for p in &terms.parties {
        println!("party: {}\t{}", p.organisation_id, p.partner_type);
    }
    println!("purposes: {}", terms.processing_purposes.join(","));
    println!("valid_from: {}", show_time(terms.valid_from.as_ref()));
    println!("valid_until: {}", show_time(terms.valid_until.as_ref()));
    let scope = terms.scope.unwrap_or_default();
    println!("max_dossiers: {}", scope.max_dossiers);
    println!("dossier_count: {}", a.dossier_count);
    println!(
        "tracks: {}",
        scope
            .tracks
            .iter()
            .map(|t| enum_short(*t, pb::Track::as_str_name, "TRACK_"))
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("violence_forms: {}", scope.violence_forms.join(","));
    if let Some(d) = &terms.signed_document {
        let hex: String = d.sha256.iter().map(|b| format!("{b:02x}")).collect();
        println!("signed_document: sha256:{hex}\t{}", d.location);
    }
    if !a.change_summary.is_empty() {
        println!("change_summary: {}", a.change_summary);
    }
    println!(
        "created: {} by {}",
        show_time(a.created_at.as_ref()),
        a.created_by
    );
    if let Some(ap) = &a.approval {
        println!(
            "approved: {} by {} ({}, {}, ref {}), recorded {} by {}",
            show_time(ap.decided_at.as_ref()),
            ap.prosecutor_name,
            ap.prosecutor_office,
            ap.reasons,
            ap.reference,
            show_time(ap.recorded_at.as_ref()),
            ap.recorded_by
        );
    }
    if let Some(r) = &a.revocation {
        println!(
            "revoked: {} by {} ({}: {})",
            show_time(r.revoked_at.as_ref()),
            r.revoked_by,
            enum_short(
                r.reason,
                pb::RevocationReason::as_str_name,
                "REVOCATION_REASON_"
            ),
            r.explanation
        );
    }
    for v in versions {
        println!("version {}: {}", v.version, status_name(v.status));
    }
}

pub async fn run(connection: &Connection, command: AgreementCommand) -> anyhow::Result<()> {
    let mut client = connection.legal_basis().await?;
    match command {
        AgreementCommand::List {
            district,
            party,
            status,
            all_versions,
        } => {
            let statuses = status
                .into_iter()
                .map(|s| {
                    (match s {
                        Status::Draft => pb::AgreementStatus::Draft,
                        Status::Approved => pb::AgreementStatus::Approved,
                        Status::Expired => pb::AgreementStatus::Expired,
                        Status::Revoked => pb::AgreementStatus::Revoked,
                        Status::Superseded => pb::AgreementStatus::Superseded,
                    }) as i32
                })
                .collect::<Vec<_>>();
            let mut page_token = String::new();
            loop {
                let res = client
                    .list_agreements(pb::ListAgreementsRequest {
                        page: Some(pb::PageRequest {
                            page_size: 500,
                            page_token,
                        }),
                        statuses: statuses.clone(),
                        district: district.clone(),
                        party_organisation_id: party.clone(),
                        in_force_at: None,
                        all_versions,
                    })
                    .await?
                    .into_inner();
                res.agreements.iter().for_each(print_line);
                if res.next_page_token.is_empty() {
                    break;
                }
                page_token = res.next_page_token;
            }
        }
        AgreementCommand::Show {
            agreement_id,
            agreement_version: version,
        } => {
            let res = client
                .get_agreement(pb::GetAgreementRequest {
                    agreement_id,
                    version,
                })
                .await?
                .into_inner();
            print_agreement(&res.agreement.unwrap_or_default(), &res.versions);
        }
        AgreementCommand::Create { terms } => {
            let terms = terms.into_terms()?;
            let created = client
                .create_agreement(pb::CreateAgreementRequest { terms: Some(terms) })
                .await?
                .into_inner()
                .agreement
                .unwrap_or_default();
            print_agreement(&created, &[]);
        }
        AgreementCommand::Amend {
            agreement_id,
            base_version,
            summary,
            terms,
        } => {
            let terms = terms.into_terms()?;
            let amended = client
                .amend_agreement(pb::AmendAgreementRequest {
                    agreement_id,
                    base_version,
                    terms: Some(terms),
                    change_summary: summary,
                })
                .await?
                .into_inner()
                .agreement
                .unwrap_or_default();
            print_agreement(&amended, &[]);
        }
        AgreementCommand::Approve {
            agreement_id,
            agreement_version: version,
            office,
            prosecutor,
            decided,
            reference,
            reasons,
        } => {
            let approval = pb::ProsecutorApproval {
                prosecutor_office: office,
                prosecutor_name: prosecutor,
                decided_at: Some(parse_time("decided", &decided)?),
                reference,
                reasons,
                recorded_by: String::new(),
                recorded_at: None,
            };
            let approved = client
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id,
                    version,
                    approval: Some(approval),
                })
                .await?
                .into_inner()
                .agreement
                .unwrap_or_default();
            print_agreement(&approved, &[]);
        }
        AgreementCommand::Revoke {
            agreement_id,
            expected_version,
            reason,
            explanation,
        } => {
            let reason = match reason {
                Reason::ProsecutorWithdrew => pb::RevocationReason::ProsecutorWithdrew,
                Reason::PartiesEnded => pb::RevocationReason::PartiesEnded,
                Reason::Replaced => pb::RevocationReason::Replaced,
                Reason::LegalChange => pb::RevocationReason::LegalChange,
                Reason::Error => pb::RevocationReason::Error,
                Reason::Other => pb::RevocationReason::Other,
            };
            let revoked = client
                .revoke_agreement(pb::RevokeAgreementRequest {
                    agreement_id,
                    expected_version,
                    reason: reason as i32,
                    explanation,
                })
                .await?
                .into_inner()
                .agreement
                .unwrap_or_default();
            print_agreement(&revoked, &[]);
        }
        AgreementCommand::Check {
            organisation,
            purpose,
            district,
            track: t,
            violence_forms,
            at,
        } => {
            let at = at.map(|a| parse_time("at", &a)).transpose()?;
            let answer = client
                .check_basis(pb::CheckBasisRequest {
                    organisation_id: organisation,
                    purpose,
                    dossier: Some(pb::BasisDossierContext {
                        district,
                        track: t.map_or(0, track),
                        violence_forms,
                        ..Default::default()
                    }),
                    at,
                    count_dossier: false,
                    informing: pb::InformingRequirement::Unspecified as i32,
                })
                .await?
                .into_inner();
            let basis = answer.agreement.unwrap_or_default();
            if answer.allowed {
                println!(
                    "allowed: agreement {} v{} (valid until {})",
                    basis.agreement_id,
                    basis.agreement_version,
                    show_time(answer.valid_until.as_ref())
                );
            } else {
                let reason = pb::BasisDenialReason::try_from(answer.denial_reason)
                    .map(|r| r.as_str_name().trim_start_matches("BASIS_DENIAL_REASON_"))
                    .unwrap_or("UNKNOWN");
                if basis.agreement_id.is_empty() {
                    println!("denied: {reason}");
                } else {
                    println!(
                        "denied: {reason} (agreement {} v{})",
                        basis.agreement_id, basis.agreement_version
                    );
                }
            }
        }
    }
    Ok(())
}
