//! `schakel service-account`: partner systems' accounts (coordinator).

use schakel_kit::auth::Role;
use schakel_proto::v1 as pb;

use crate::{admin::roles, connect::Connection};

#[derive(clap::Subcommand)]
pub enum ServiceAccountCommand {
    /// List service accounts (coordinator).
    List {
        /// Only this organisation (id).
        #[arg(long, default_value = "")]
        organisation: String,
    },
    /// Create a service account (coordinator).
    Create {
        #[arg(long)]
        name: String,
        /// Organisation id.
        #[arg(long)]
        organisation: String,
        /// Role (repeatable): aanmelder, team_member.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// Common name of the partner system's client certificate.
        #[arg(long, default_value = "")]
        certificate_subject: String,
        /// Generate a client secret (printed once).
        #[arg(long)]
        generate_secret: bool,
    },
    /// Disable a service account (coordinator): no new tokens, and its tokens
    /// stop working within auth.jwks_max_age.
    Disable {
        /// Service account id.
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Give a service account a new client secret, printed once (coordinator):
    /// the old secret and every token issued before stop working.
    ResetSecret {
        /// Service account id.
        id: String,
    },
}

fn print_account(sa: &pb::ServiceAccount) {
    let state = if sa.disabled { "disabled" } else { "active" };
    let subject = if sa.certificate_subject.is_empty() {
        "-"
    } else {
        &sa.certificate_subject
    };
    let secret = if sa.has_secret { "secret" } else { "no-secret" };
    println!(
        "{}\t{}\t{}\t{}\t{}\t{subject}\t{secret}\t{}",
        sa.id,
        sa.client_id,
        sa.organisation_id,
        roles(&sa.roles),
        state,
        sa.name
    );
}

pub async fn run(connection: &Connection, command: ServiceAccountCommand) -> anyhow::Result<()> {
    let mut identity = connection.identity().await?;
    match command {
        ServiceAccountCommand::List { organisation } => {
            let mut page_token = String::new();
            loop {
                let res = identity
                    .list_service_accounts(pb::ListServiceAccountsRequest {
                        page: Some(pb::PageRequest {
                            page_size: 500,
                            page_token,
                        }),
                        organisation_id: organisation.clone(),
                    })
                    .await?
                    .into_inner();
                res.service_accounts.iter().for_each(print_account);
                if res.next_page_token.is_empty() {
                    break;
                }
                page_token = res.next_page_token;
            }
        }
        ServiceAccountCommand::Create {
            name,
            organisation,
            roles,
            certificate_subject,
            generate_secret,
        } => {
            let req = pb::CreateServiceAccountRequest {
                name,
                organisation_id: organisation,
                roles: roles.iter().map(|r| r.to_proto() as i32).collect(),
                certificate_subject,
                generate_secret,
            };
            let res = identity.create_service_account(req).await?.into_inner();
            let sa = res.service_account.unwrap_or_default();
            println!("id: {}", sa.id);
            println!("client_id: {}", sa.client_id);
            println!("organisation: {}", sa.organisation_id);
            println!("roles: {}", crate::admin::roles(&sa.roles));
            if !sa.certificate_subject.is_empty() {
                println!("certificate_subject: {}", sa.certificate_subject);
            }
            if !res.client_secret.is_empty() {
                println!("client_secret (shown once): {}", res.client_secret);
            }
        }
        ServiceAccountCommand::Disable { id, reason } => {
            let res = identity
                .disable_service_account(pb::DisableServiceAccountRequest {
                    service_account_id: id,
                    reason,
                })
                .await?
                .into_inner();
            print_account(&res.service_account.unwrap_or_default());
        }
        ServiceAccountCommand::ResetSecret { id } => {
            let res = identity
                .reset_service_account_secret(pb::ResetServiceAccountSecretRequest {
                    service_account_id: id,
                })
                .await?
                .into_inner();
            print_account(&res.service_account.unwrap_or_default());
            println!("client_secret (shown once): {}", res.client_secret);
        }
    }
    Ok(())
}
