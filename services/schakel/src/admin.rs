//! Admin and partner commands: each is one gRPC call to a running server,
//! printed as tab-separated lines (lists) or `key: value` lines (one item).

use std::io::Read;

use schakel_kit::auth::Role;
use schakel_proto::v1 as pb;

use crate::connect::Connection;

/// The commands that talk to a running server.
#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Obtain an access token and print it.
    Login,
    /// Check a server's gRPC health over TLS (for probes): prints the status,
    /// exits 0 when SERVING, 1 otherwise.
    Health {
        /// The gRPC service name (default: the server as a whole).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Show who the token speaks for.
    Whoami,
    /// Print the identity service's JWK set.
    Jwks,
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Partner types.
    #[command(subcommand, name = "partner-type")]
    PartnerType(PartnerTypeCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Service accounts for partner systems.
    #[command(subcommand, name = "service-account")]
    ServiceAccount(crate::account_cli::ServiceAccountCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The audit log: verify it, query it, report to data subjects.
    #[command(subcommand)]
    Audit(crate::audit_cli::AuditCommand),
    /// Art. 458ter agreements: list, show, create, amend, approve, revoke, check.
    #[command(subcommand)]
    Agreement(Box<crate::agreement_cli::AgreementCommand>),
    /// The need-to-know policy: test, diff, propose, approve, reject, list, explain, matrix.
    #[command(subcommand)]
    Policy(Box<crate::policy_cli::PolicyCommand>),
    /// Dossiers: register, show, list, advance, participant, contribute.
    #[command(subcommand)]
    Dossier(Box<crate::dossier_cli::DossierCommand>),
    /// Information requests (vraag tot infodeling): create, list, answer, decline.
    #[command(subcommand)]
    Request(Box<crate::dossier_cli::RequestCommand>),
    /// The chain process: the weekly table, track reviews, events, the figures.
    #[command(subcommand)]
    Chain(Box<crate::chain_cli::ChainCommand>),
}

#[derive(clap::Subcommand)]
pub enum OrgCommand {
    /// List organisations.
    List {
        /// Only this partner type.
        #[arg(long, default_value = "")]
        partner_type: String,
        /// Only this district.
        #[arg(long, default_value = "")]
        region: String,
    },
    /// Register an organisation (coordinator).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        partner_type: String,
        /// Judicial district, e.g. leuven.
        #[arg(long)]
        region: String,
        /// KBO enterprise number.
        #[arg(long)]
        kbo: String,
    },
}

#[derive(clap::Subcommand)]
pub enum PartnerTypeCommand {
    /// List partner types.
    List,
    /// Register a network partner type (coordinator).
    Create {
        #[arg(long)]
        code: String,
        #[arg(long)]
        description: String,
    },
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// List users (coordinator).
    List {
        #[arg(long, default_value = "")]
        organisation: String,
    },
    /// Create a user (coordinator). Without --password-stdin the server
    /// generates a password and it is printed once.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// Organisation id.
        #[arg(long)]
        organisation: String,
        /// Role (repeatable): aanmelder, team_member, casusregisseur, privacy_officer, coordinator.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// Read the initial password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Approve a user created with an oversight role (privacy_officer,
    /// coordinator) by another coordinator (four-eyes; coordinator).
    Approve {
        /// User id.
        id: String,
    },
    /// Disable a user (coordinator); their tokens stop working within
    /// auth.jwks_max_age.
    Disable {
        /// User id.
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Rotate the token signing key (coordinator).
    Rotate,
}

pub(crate) fn roles(roles: &[i32]) -> String {
    roles
        .iter()
        .filter_map(|r| Role::from_proto(*r))
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn seconds(ts: Option<&prost_types::Timestamp>) -> i64 {
    ts.map_or(0, |t| t.seconds)
}

fn print_org(o: &pb::Organisation) {
    println!(
        "{}\t{}\t{}\t{}\t{}",
        o.id, o.partner_type, o.region, o.kbo_number, o.name
    );
}

fn print_user(u: &pb::User) {
    let state = if u.disabled {
        "disabled"
    } else if u.pending_approval {
        "pending-approval"
    } else {
        "active"
    };
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        u.id,
        u.username,
        u.organisation_id,
        roles(&u.roles),
        state,
        u.display_name
    );
}

pub async fn run(connection: &Connection, command: AdminCommand) -> anyhow::Result<()> {
    if let AdminCommand::Login = command {
        let token = connection.issue_token(connection.channel()?).await?;
        println!("{}", token.access_token);
        return Ok(());
    }
    if let AdminCommand::Health { service } = command {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let mut client = HealthClient::new(connection.channel()?);
        let status = client
            .check(HealthCheckRequest { service })
            .await?
            .into_inner()
            .status;
        let status = ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown);
        println!("{}", status.as_str_name());
        if status != ServingStatus::Serving {
            std::process::exit(1);
        }
        return Ok(());
    }
    if let AdminCommand::Audit(command) = command {
        return crate::audit_cli::run(connection, command).await;
    }
    if let AdminCommand::Agreement(command) = command {
        return crate::agreement_cli::run(connection, *command).await;
    }
    if let AdminCommand::Policy(command) = command {
        return crate::policy_cli::run(connection, *command).await;
    }
    if let AdminCommand::Dossier(command) = command {
        return crate::dossier_cli::run_dossier(connection, *command).await;
    }
    if let AdminCommand::Request(command) = command {
        return crate::dossier_cli::run_request(connection, *command).await;
    }
    if let AdminCommand::Chain(command) = command {
        return crate::chain_cli::run(connection, *command).await;
    }
    if let AdminCommand::ServiceAccount(command) = command {
        return crate::account_cli::run(connection, command).await;
    }
    let mut identity = connection.identity().await?;
    match command {
        AdminCommand::Login
        | AdminCommand::Health { .. }
        | AdminCommand::Audit(_)
        | AdminCommand::Agreement(_)
        | AdminCommand::Policy(_)
        | AdminCommand::Dossier(_)
        | AdminCommand::Request(_)
        | AdminCommand::Chain(_)
        | AdminCommand::ServiceAccount(_) => {}
        AdminCommand::Whoami => {
            let me = identity.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
            let actor = me.actor.unwrap_or_default();
            println!("subject: {}", actor.subject);
            println!("display_name: {}", me.display_name);
            println!("organisation: {}", actor.organisation_id);
            println!("partner_type: {}", actor.partner_type);
            println!("region: {}", me.region);
            println!("roles: {}", roles(&actor.roles));
            println!("expires_at: {}", seconds(me.expires_at.as_ref()));
        }
        AdminCommand::Jwks => {
            println!(
                "{}",
                identity
                    .get_jwks(pb::GetJwksRequest {})
                    .await?
                    .into_inner()
                    .jwks_json
            );
        }
        AdminCommand::Org(OrgCommand::List {
            partner_type,
            region,
        }) => {
            let mut page_token = String::new();
            loop {
                let page = Some(pb::PageRequest {
                    page_size: 500,
                    page_token,
                });
                let req = pb::ListOrganisationsRequest {
                    page,
                    partner_type: partner_type.clone(),
                    region: region.clone(),
                };
                let res = identity.list_organisations(req).await?.into_inner();
                res.organisations.iter().for_each(print_org);
                if res.next_page_token.is_empty() {
                    break;
                }
                page_token = res.next_page_token;
            }
        }
        AdminCommand::Org(OrgCommand::Create {
            name,
            partner_type,
            region,
            kbo,
        }) => {
            let req = pb::CreateOrganisationRequest {
                name,
                partner_type,
                region,
                kbo_number: kbo,
            };
            let org = identity
                .create_organisation(req)
                .await?
                .into_inner()
                .organisation
                .unwrap_or_default();
            print_org(&org);
        }
        AdminCommand::PartnerType(PartnerTypeCommand::List) => {
            for t in identity
                .list_partner_types(pb::ListPartnerTypesRequest {})
                .await?
                .into_inner()
                .partner_types
            {
                println!(
                    "{}\t{}\t{}",
                    t.code,
                    if t.builtin { "kernpartner" } else { "network" },
                    t.description
                );
            }
        }
        AdminCommand::PartnerType(PartnerTypeCommand::Create { code, description }) => {
            let t = identity
                .create_partner_type(pb::CreatePartnerTypeRequest { code, description })
                .await?
                .into_inner();
            let t = t.partner_type.unwrap_or_default();
            println!("{}\t{}", t.code, t.description);
        }
        AdminCommand::User(UserCommand::List { organisation }) => {
            let mut page_token = String::new();
            loop {
                let page = Some(pb::PageRequest {
                    page_size: 500,
                    page_token,
                });
                let res = identity
                    .list_users(pb::ListUsersRequest {
                        page,
                        organisation_id: organisation.clone(),
                    })
                    .await?
                    .into_inner();
                res.users.iter().for_each(print_user);
                if res.next_page_token.is_empty() {
                    break;
                }
                page_token = res.next_page_token;
            }
        }
        AdminCommand::User(UserCommand::Create {
            username,
            display_name,
            organisation,
            roles,
            password_stdin,
        }) => {
            let mut password = String::new();
            if password_stdin {
                std::io::stdin().read_to_string(&mut password)?;
                password = password.trim_end_matches(['\r', '\n']).to_owned();
            }
            let req = pb::CreateUserRequest {
                username,
                display_name,
                organisation_id: organisation,
                roles: roles.iter().map(|r| r.to_proto() as i32).collect(),
                password,
            };
            let res = identity.create_user(req).await?.into_inner();
            print_user(&res.user.unwrap_or_default());
            if !res.generated_password.is_empty() {
                println!(
                    "generated password (shown once): {}",
                    res.generated_password
                );
            }
        }
        AdminCommand::User(UserCommand::Approve { id }) => {
            let res = identity
                .approve_user(pb::ApproveUserRequest { user_id: id })
                .await?
                .into_inner();
            print_user(&res.user.unwrap_or_default());
        }
        AdminCommand::User(UserCommand::Disable { id, reason }) => {
            let res = identity
                .disable_user(pb::DisableUserRequest {
                    user_id: id,
                    reason,
                })
                .await?
                .into_inner();
            print_user(&res.user.unwrap_or_default());
        }
        AdminCommand::Key(KeyCommand::Rotate) => {
            let res = identity
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await?
                .into_inner();
            println!("kid: {}", res.kid);
            println!("published: {}", res.published_kids.join(","));
        }
    }
    Ok(())
}
