//! `schakel policy ...`: test policy files offline, and review, propose,
//! approve and read policy versions on a running server.

use std::path::{Path, PathBuf};

use anyhow::Context;
use schakel_policy::{
    compile,
    document::{ACTIONS, PHASES, ROLES, action_code, phase_code, role_code},
    expectations,
};
use schakel_proto::v1 as pb;

use crate::connect::Connection;

/// Policy commands.
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files offline: parse, compile, prove the decision table
    /// equal to casbin over every combination, and run the expectation tables
    /// in DIR/tests/*.csv. Exits 1 on any failure. No server needed.
    Test {
        /// Directory with model.conf, policy.csv, fields.csv and tests/.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Show what would change if DIR's files were proposed against the active version.
    Diff {
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Propose DIR's files as a new version (coordinator).
    Propose {
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// What the change is for.
        #[arg(long)]
        description: String,
    },
    /// Approve a proposed version; it becomes active (a coordinator other than the proposer).
    Approve { policy_version: u64 },
    /// Reject a proposed version (coordinator).
    Reject {
        policy_version: u64,
        #[arg(long)]
        reason: String,
    },
    /// List policy versions, newest first.
    List,
    /// Explain one decision and the rules behind it.
    Explain {
        /// Partner type code, e.g. politie.
        partner_type: String,
        /// Role code, e.g. team_member.
        role: String,
        /// Field path, e.g. ggz.clinical_notes.
        field: String,
        /// read or contribute.
        action: String,
        /// Phase code, e.g. case_building.
        phase: String,
        /// Version (default: the active one).
        #[arg(long, default_value_t = 0)]
        policy_version: u64,
    },
    /// Print the decision grid: subjects (partner type / role) as rows, fields
    /// as numbered columns, for one phase and action.
    Matrix {
        #[arg(long, default_value = "case_building")]
        phase: String,
        #[arg(long, default_value = "read")]
        action: String,
        /// Version (default: the active one).
        #[arg(long, default_value_t = 0)]
        policy_version: u64,
    },
}

fn code<T: Copy + Into<i32>>(list: &[(&str, T)], what: &str, value: &str) -> anyhow::Result<i32> {
    list.iter()
        .find(|(c, _)| *c == value)
        .map(|(_, v)| (*v).into())
        .ok_or_else(|| {
            let known: Vec<&str> = list.iter().map(|(c, _)| *c).collect();
            anyhow::anyhow!("{what} {value:?} is not one of {}", known.join(", "))
        })
}

fn read_document(dir: &Path) -> anyhow::Result<pb::PolicyDocument> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(pb::PolicyDocument {
        model_conf: read("model.conf")?,
        policy_csv: read("policy.csv")?,
        fields_csv: read("fields.csv")?,
    })
}

fn effect(value: i32) -> &'static str {
    if value == pb::PolicyEffect::Allow as i32 {
        "allow"
    } else {
        "deny"
    }
}

fn print_diff(diff: &pb::PolicyDiff) {
    println!(
        "changes from version {}: {} decision(s)",
        diff.from_version,
        diff.changes.len()
    );
    for c in &diff.changes {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{} -> {}",
            c.partner_type,
            role_code(c.role).unwrap_or("?"),
            c.field,
            action_code(c.action).unwrap_or("?"),
            phase_code(c.phase).unwrap_or("?"),
            effect(c.before),
            effect(c.after)
        );
    }
    for (what, list) in [
        ("field added", &diff.fields_added),
        ("field removed", &diff.fields_removed),
        ("field changed", &diff.fields_modified),
    ] {
        for f in list {
            println!("{what}: {f}");
        }
    }
}

fn status_name(value: i32) -> String {
    pb::PolicyVersionStatus::try_from(value)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("POLICY_VERSION_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| value.to_string())
}

/// Runs `schakel policy test DIR`: exit code 1 when anything fails.
async fn test(dir: &Path) -> anyhow::Result<bool> {
    let document = read_document(dir)?;
    let compiled = match compile(0, document).await {
        Ok(c) => c,
        Err(invalid) => {
            println!("FAIL: {}: {}", invalid.field, invalid.message);
            return Ok(false);
        }
    };
    let tests = dir.join("tests");
    let mut rows = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&tests)
        .with_context(|| format!("reading {}", tests.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    names.sort();
    for path in &names {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path)?;
        match expectations::parse(&name, &text) {
            Ok(parsed) => rows.extend(parsed),
            Err(e) => {
                println!("FAIL: {e}");
                return Ok(false);
            }
        }
    }
    let failures = expectations::failures(&compiled.table, &rows);
    for f in &failures {
        println!("FAIL: {f}");
    }
    if failures.is_empty() {
        println!(
            "ok: {} fields, {} rules; {} decisions proven equal to casbin; {} expectations in {} files hold",
            compiled.policy.fields.len(),
            compiled.policy.rules.len(),
            compiled.proven,
            rows.len(),
            names.len()
        );
    }
    Ok(failures.is_empty())
}

pub async fn run(connection: &Connection, command: PolicyCommand) -> anyhow::Result<()> {
    if let PolicyCommand::Test { dir } = &command {
        if test(dir).await? {
            return Ok(());
        }
        std::process::exit(1);
    }
    let mut client = connection.policy().await?;
    match command {
        PolicyCommand::Test { .. } => {}
        PolicyCommand::Diff { dir } | PolicyCommand::Propose { dir, .. }
            if !dir.join("policy.csv").exists() =>
        {
            anyhow::bail!("{} has no policy.csv", dir.display());
        }
        PolicyCommand::Diff { dir } => {
            let active = client
                .get_active_policy(pb::GetActivePolicyRequest {})
                .await?
                .into_inner();
            let base = active.policy.map_or(0, |p| p.version);
            let response = client
                .propose_policy(pb::ProposePolicyRequest {
                    document: Some(read_document(&dir)?),
                    base_version: base,
                    description: String::new(),
                    validate_only: true,
                })
                .await?
                .into_inner();
            print_diff(&response.diff.unwrap_or_default());
        }
        PolicyCommand::Propose { dir, description } => {
            let active = client
                .get_active_policy(pb::GetActivePolicyRequest {})
                .await?
                .into_inner();
            let base = active.policy.map_or(0, |p| p.version);
            let response = client
                .propose_policy(pb::ProposePolicyRequest {
                    document: Some(read_document(&dir)?),
                    base_version: base,
                    description,
                    validate_only: false,
                })
                .await?
                .into_inner();
            let version = response.policy.unwrap_or_default();
            println!(
                "proposed: version {} (against {}), awaiting a second coordinator",
                version.version, version.base_version
            );
            print_diff(&response.diff.unwrap_or_default());
        }
        PolicyCommand::Approve {
            policy_version: version,
        } => {
            let policy = client
                .approve_policy(pb::ApprovePolicyRequest { version })
                .await?
                .into_inner()
                .policy
                .unwrap_or_default();
            println!("active: version {}", policy.version);
        }
        PolicyCommand::Reject {
            policy_version: version,
            reason,
        } => {
            let policy = client
                .reject_policy(pb::RejectPolicyRequest { version, reason })
                .await?
                .into_inner()
                .policy
                .unwrap_or_default();
            println!("rejected: version {}", policy.version);
        }
        PolicyCommand::List => {
            let mut token = String::new();
            loop {
                let page = client
                    .list_policy_versions(pb::ListPolicyVersionsRequest {
                        page: Some(pb::PageRequest {
                            page_size: 100,
                            page_token: token,
                        }),
                        statuses: vec![],
                    })
                    .await?
                    .into_inner();
                for v in &page.versions {
                    println!(
                        "{}\t{}\tbase {}\tproposed by {}\t{}",
                        v.version,
                        status_name(v.status),
                        v.base_version,
                        v.proposed_by,
                        v.description
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        PolicyCommand::Explain {
            partner_type,
            role,
            field,
            action,
            phase,
            policy_version: version,
        } => {
            let response = client
                .explain(pb::ExplainRequest {
                    partner_type,
                    role: code(&ROLES, "role", &role)?,
                    field,
                    action: code(&ACTIONS, "action", &action)?,
                    phase: code(&PHASES, "phase", &phase)?,
                    version,
                })
                .await?
                .into_inner();
            println!("{} (version {})", response.explanation, response.version);
            for rule in &response.matched_rules {
                println!("  policy.csv:{}: {}", rule.line, rule.text);
            }
            if response.allowed_in_other_phase {
                println!("  (allowed in another phase)");
            }
        }
        PolicyCommand::Matrix {
            phase,
            action,
            policy_version: version,
        } => {
            let matrix = client
                .access_matrix(pb::AccessMatrixRequest {
                    version,
                    phase: code(&PHASES, "phase", &phase)?,
                    action: code(&ACTIONS, "action", &action)?,
                })
                .await?
                .into_inner();
            println!(
                "policy version {}, phase {phase}, action {action}: X = allowed, . = denied",
                matrix.version
            );
            let width = matrix
                .rows
                .iter()
                .map(|r| r.partner_type.len() + 1 + role_code(r.role).unwrap_or("?").len())
                .max()
                .unwrap_or(10);
            // Column numbers, written vertically in two lines (tens, units).
            for digit in [10, 1] {
                let header: String = (1..=matrix.fields.len())
                    .map(|i| {
                        if digit == 10 && i < 10 {
                            ' '
                        } else {
                            char::from_digit(((i / digit) % 10) as u32, 10).unwrap_or('?')
                        }
                    })
                    .collect();
                println!("{:width$}  {header}", "");
            }
            for row in &matrix.rows {
                let subject = format!(
                    "{}/{}",
                    row.partner_type,
                    role_code(row.role).unwrap_or("?")
                );
                let cells: String = row
                    .cells
                    .iter()
                    .map(|c| {
                        if *c == pb::PolicyEffect::Allow as i32 {
                            'X'
                        } else {
                            '.'
                        }
                    })
                    .collect();
                println!("{subject:width$}  {cells}");
            }
            println!();
            for (i, field) in matrix.fields.iter().enumerate() {
                println!("{:>3} {field}", i + 1);
            }
        }
    }
    Ok(())
}
