//! `schakel dev`: every service in one process, on one TLS port, with
//! embedded SQLite, a generated development CA and demo data.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use schakel_identity::{Identity, IdentityConfig, MasterKey};
use schakel_kit::{
    auth::TokenVerifier,
    config::{AuthConfig, ServerConfig, TlsFiles},
    devca::{ensure_dev_pki, write_private},
    server::{App, shutdown_signal},
    time::Clock,
};
use tonic::service::Routes;

/// Options of `schakel dev`.
#[derive(clap::Args)]
pub struct DevArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Where databases, the dev CA and dev-accounts.json live.
    #[arg(long, default_value = "./schakel-data")]
    data_dir: PathBuf,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let _telemetry = schakel_kit::telemetry::init("dev")?;
    let data = &args.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let pki = ensure_dev_pki(&data.join("tls"))?;
    let master = dev_master_key(&data.join("master.key"))?;
    let auth = AuthConfig::default();

    let identity = Identity::connect(
        &sqlite_url(data, "identity"),
        IdentityConfig::default(),
        auth.clone(),
        master,
        Clock::System,
    )
    .await?;
    let accounts_file = data.join("dev-accounts.json");
    let accounts = schakel_identity::dev::seed(&identity, &accounts_file).await?;

    let verifier = Arc::new(TokenVerifier::new(auth, identity.jwks_fetcher()));
    let server = ServerConfig {
        listen: args.listen,
        tls: TlsFiles {
            cert: Some(pki.server_cert.clone()),
            key: Some(pki.server_key.clone()),
            ca: Some(pki.ca.clone()),
            require_client_cert: false,
        },
        ..ServerConfig::default()
    };
    let limits = server.limits.clone();
    let routes = Routes::new(identity.into_server(&limits));
    let app = App::build(
        server,
        routes,
        vec![schakel_identity::SERVICE_NAME.into()],
        verifier,
    )
    .await?;

    let url = format!("https://{}", app.local_addr());
    let coordinator = accounts
        .iter()
        .find(|a| a.roles.iter().any(|r| r == "coordinator"));
    // The first line is machine-readable: tests and scripts wait for it.
    println!("schakel dev listening on {url}");
    println!("  data:      {}", data.display());
    println!("  CA:        {}", pki.ca.display());
    println!(
        "  accounts:  {} ({} users)",
        accounts_file.display(),
        accounts.len()
    );
    println!();
    println!("Try it (in another terminal):");
    println!(
        "  export SCHAKEL_URL={url} SCHAKEL_CA_CERT={}",
        pki.ca.display()
    );
    if let Some(c) = coordinator {
        println!(
            "  export SCHAKEL_USERNAME={} SCHAKEL_PASSWORD=<password of {} in {}>",
            c.username,
            c.username,
            accounts_file.display()
        );
    }
    println!("  cargo run -- whoami");
    println!("  cargo run -- org list");
    app.run_until(shutdown_signal()).await
}

/// The SQLite URL of one service's database under the data directory.
pub fn sqlite_url(data: &std::path::Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db?mode=rwc", data.display())
}

fn dev_master_key(path: &std::path::Path) -> anyhow::Result<MasterKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)?;
        return MasterKey::from_base64(&text)
            .with_context(|| format!("master key in {}", path.display()));
    }
    let key = MasterKey::generate();
    write_private(path, &key.to_base64())?;
    Ok(key)
}
