//! `schakel bootstrap`: creates the first coordinator of a deployment,
//! directly in the identity database (the only way in before anyone can log in).

use std::{io::Read, path::PathBuf};

use schakel_identity::{Identity, bootstrap::Bootstrap};
use schakel_kit::{config::ConfigError, time::Clock};

use crate::serve::ServeConfig;

/// Options of `schakel bootstrap`.
#[derive(clap::Args)]
pub struct BootstrapArgs {
    /// The identity service's configuration file (database URL, master key).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The coordinator's organisation, e.g. "Justitiehuis Leuven".
    #[arg(long)]
    organisation_name: String,
    /// Partner type of that organisation.
    #[arg(long, default_value = "justitiehuis")]
    partner_type: String,
    /// Judicial district.
    #[arg(long)]
    region: String,
    /// KBO enterprise number of the organisation.
    #[arg(long)]
    kbo: String,
    /// Login name of the coordinator.
    #[arg(long)]
    username: String,
    /// Display name of the coordinator.
    #[arg(long)]
    display_name: String,
    /// Read the password from standard input (otherwise one is generated and printed once).
    #[arg(long)]
    password_stdin: bool,
}

pub async fn run(args: BootstrapArgs) -> anyhow::Result<()> {
    let _telemetry = schakel_kit::telemetry::init("bootstrap")?;
    let config: ServeConfig = schakel_kit::config::load(args.config.as_deref())?;
    let database_url = config.database_url("identity")?;
    let master = config
        .identity
        .load_master_key()
        .map_err(|e| ConfigError(format!("{e:#}")))?;
    let mut password = String::new();
    if args.password_stdin {
        std::io::stdin().read_to_string(&mut password)?;
        password = password.trim_end_matches(['\r', '\n']).to_owned();
    }
    // Offline: the bootstrap writes the identity database directly, before any
    // audit log can be reached; nothing it does goes through audited paths.
    let offline = std::sync::Arc::new(schakel_kit::audit::OfflineSink);
    let identity = Identity::connect(
        &database_url,
        config.identity,
        config.auth,
        master,
        Clock::System,
        offline,
    )
    .await?;
    let done = schakel_identity::bootstrap::bootstrap(
        &identity,
        Bootstrap {
            organisation_name: args.organisation_name,
            partner_type: args.partner_type,
            region: args.region,
            kbo_number: args.kbo,
            username: args.username,
            display_name: args.display_name,
            password,
        },
    )
    .await
    .map_err(|e| anyhow::Error::new(tonic::Status::from(e)))?;
    println!("organisation: {}", done.organisation.id);
    println!("coordinator: {} ({})", done.user.username, done.user.id);
    if let Some(password) = done.generated_password {
        println!("generated password (shown once): {password}");
    }
    Ok(())
}
