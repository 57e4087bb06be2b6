//! `schakel dev`: every service in one process, on one TLS port, with
//! embedded SQLite, a generated development CA and demo data.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use std::io::Write as _;

use anyhow::Context;
use schakel_audit::{Audit, AuditConfig};
use schakel_broker::{
    Broker,
    deps::{LocalBasis, local_policy},
    keys::Keyring,
};
use schakel_identity::{Identity, IdentityConfig, MasterKey};
use schakel_kit::client::CallContext;
use schakel_kit::crypto::SecretKey;
use schakel_kit::{
    auth::TokenVerifier,
    config::{AuthConfig, ServerConfig, TlsFiles},
    devca::{ensure_dev_pki, write_private},
    server::{App, shutdown_signal},
    time::Clock,
};
use schakel_legal_basis::{LegalBasis, Organisations};
use schakel_policy::Policies;
use schakel_proto::v1::{
    self as pb, broker_service_client::BrokerServiceClient,
    identity_service_client::IdentityServiceClient, issue_token_request::Grant,
};
use tonic::service::Routes;

/// `writeln!` that ignores a closed standard output.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

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
    let auth = AuthConfig::default();

    let audit_key = dev_secret(&data.join("audit-signing.key"), || {
        schakel_audit::signing_key_to_base64(&ed25519_dalek::SigningKey::generate(
            &mut rand::rngs::OsRng,
        ))
    })?;
    let audit = Audit::connect(
        &sqlite_url(data, "audit"),
        AuditConfig::default(),
        schakel_audit::signing_key_from_base64(&audit_key)?,
        Clock::System,
    )
    .await?;
    spawn_retention(audit.clone());

    let master = dev_secret(&data.join("master.key"), || {
        MasterKey::generate().to_base64()
    })?;
    let identity = Identity::connect(
        &sqlite_url(data, "identity"),
        IdentityConfig::default(),
        auth.clone(),
        MasterKey::from_base64(&master)?,
        Clock::System,
        Arc::new(audit.log().clone()),
    )
    .await?;
    let accounts_file = data.join("dev-accounts.json");
    let accounts = schakel_identity::dev::seed(&identity, &accounts_file).await?;

    let legal_basis = LegalBasis::connect(
        &sqlite_url(data, "legal-basis"),
        Clock::System,
        Arc::new(audit.log().clone()),
        Arc::new(LocalOrganisations(identity.clone())),
    )
    .await?;
    let parties = schakel_identity::store::list_organisations(
        identity.database().pool(),
        "",
        schakel_identity::dev::DEV_REGION,
        "",
        500,
    )
    .await?
    .into_iter()
    .map(|o| o.id)
    .collect::<Vec<_>>();
    let agreement_id = schakel_legal_basis::dev::seed(&legal_basis, &parties).await?;

    let policies = Policies::connect(
        &sqlite_url(data, "policy"),
        Clock::System,
        Arc::new(audit.log().clone()),
    )
    .await?;
    let policy_version = policies.active().version.version;

    let broker_key = dev_secret(&data.join("broker-master.key"), || {
        SecretKey::generate().to_base64()
    })?;
    let broker = Broker::connect(
        &sqlite_url(data, "broker"),
        Clock::System,
        Keyring::new(SecretKey::from_base64(&broker_key)?, []),
        Arc::new(audit.log().clone()),
        Arc::new(LocalBasis(legal_basis.clone())),
        Arc::new(local_policy(&policies)),
        Arc::new(LocalOrganisations(identity.clone())),
    )
    .await?;

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
    let identity_pool = identity.database().clone();
    let mut routes = Routes::new(identity.into_server(&limits));
    routes = routes.add_service(audit.clone().into_server(&limits));
    routes = routes.add_service(legal_basis.into_server(&limits));
    routes = routes.add_service(policies.into_server(&limits));
    broker.spawn_retention(schakel_broker::BrokerConfig::default().retention);
    routes = routes.add_service(broker.into_server(&limits));
    let names = vec![
        schakel_identity::SERVICE_NAME.into(),
        schakel_audit::SERVICE_NAME.into(),
        schakel_legal_basis::SERVICE_NAME.into(),
        schakel_policy::SERVICE_NAME.into(),
        schakel_broker::SERVICE_NAME.into(),
    ];
    let app = App::build(server, routes, names, verifier).await?;

    let url = format!("https://{}", app.local_addr());
    let organisations: HashMap<String, String> = schakel_identity::store::list_organisations(
        identity_pool.pool(),
        "",
        schakel_identity::dev::DEV_REGION,
        "",
        500,
    )
    .await?
    .into_iter()
    .map(|o| (o.partner_type, o.id))
    .collect();
    // Serve, then put the seed family through the broker over TLS as its
    // professionals would (idempotent: a restart finds the same dossier).
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        tokio::select! {
            () = shutdown_signal() => {}
            _ = stop_rx => {}
        }
    }));
    let seeded = match seed_family(&url, &pki.ca, &accounts, &organisations).await {
        Ok(seeded) => seeded,
        Err(e) => {
            let _ = stop_tx.send(());
            let _ = server.await;
            return Err(e.context("seeding the demo dossier"));
        }
    };
    let coordinator = accounts
        .iter()
        .find(|a| a.roles.iter().any(|r| r == "coordinator"));
    // The first line is machine-readable: tests and scripts wait for it. A
    // closed standard output must not take the server down, so errors are ignored.
    let mut out = std::io::stdout().lock();
    // The first line is machine-readable: tests and scripts wait for it.
    say!(out, "schakel dev listening on {url}");
    say!(out, "  data:      {}", data.display());
    say!(out, "  CA:        {}", pki.ca.display());
    say!(
        out,
        "  accounts:  {} ({} users)",
        accounts_file.display(),
        accounts.len()
    );
    say!(
        out,
        "  audit log: {} (verifier key {})",
        audit.log().origin(),
        audit.log().verifier_key()
    );
    say!(
        out,
        "  agreement: {agreement_id} ({}, {} parties)",
        schakel_legal_basis::dev::DEV_DISTRICT,
        parties.len()
    );
    say!(out, "  policy:    version {policy_version} active");
    say!(
        out,
        "  dossier:   {} (fictional family of seed 000, registered by OCJ, {} persons)",
        seeded.dossier_id,
        seeded.persons.len()
    );
    say!(out,);
    say!(out, "Try it (in another terminal):");
    say!(
        out,
        "  export SCHAKEL_URL={url} SCHAKEL_CA_CERT={}",
        pki.ca.display()
    );
    if let Some(c) = coordinator {
        say!(
            out,
            "  export SCHAKEL_USERNAME={} SCHAKEL_PASSWORD=<password of {} in {}>",
            c.username,
            c.username,
            accounts_file.display()
        );
    }
    say!(out, "  cargo run -- whoami");
    say!(out, "  cargo run -- org list");
    say!(out, "  cargo run -- agreement list");
    say!(
        out,
        "  cargo run -- policy matrix --phase case_building --action read"
    );
    say!(
        out,
        "  SCHAKEL_USERNAME=team.politie SCHAKEL_PASSWORD=<...> cargo run -- dossier show {}",
        seeded.dossier_id
    );
    say!(
        out,
        "  SCHAKEL_USERNAME=privacy.officer SCHAKEL_PASSWORD=<...> cargo run -- audit verify"
    );
    drop(out);
    server.await?
}

/// Registers the seed-000 family through the running server: each partner's
/// `team.<partner type>` account logs in and plays its part.
async fn seed_family(
    url: &str,
    ca: &std::path::Path,
    accounts: &[schakel_identity::dev::DevAccount],
    organisations: &HashMap<String, String>,
) -> anyhow::Result<schakel_broker::seed::Seeded> {
    let seed = schakel_broker::seed::family_000();
    let channel = schakel_kit::client::channel(url, schakel_kit::tls::client_config(ca, None)?)?;
    let mut members = HashMap::new();
    for ptype in seed.circle.iter().chain([&seed.registrant]) {
        let username = format!("team.{ptype}");
        let account = accounts
            .iter()
            .find(|a| a.username == username)
            .with_context(|| format!("no dev account {username}"))?;
        let token = IdentityServiceClient::new(channel.clone())
            .issue_token(pb::IssueTokenRequest {
                grant: Some(Grant::Password(pb::PasswordGrant {
                    username: username.clone(),
                    password: account.password.clone(),
                })),
                ttl_seconds: 0,
            })
            .await
            .with_context(|| format!("logging in as {username}"))?
            .into_inner()
            .access_token;
        let organisation_id = organisations
            .get(ptype)
            .with_context(|| format!("no dev organisation of type {ptype}"))?
            .clone();
        let client = BrokerServiceClient::with_interceptor(
            channel.clone(),
            CallContext::with_token(Some(token)),
        );
        members.insert(
            ptype.clone(),
            schakel_broker::seed::Member {
                client,
                organisation_id,
            },
        );
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    seed.apply(&members, now).await
}

/// Organisations looked up in the identity service of the same process.
pub struct LocalOrganisations(pub Identity);

impl Organisations for LocalOrganisations {
    fn partner_type<'a>(
        &'a self,
        id: &'a str,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let org = schakel_identity::store::get_organisation(self.0.database().pool(), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(org.map(|o| o.partner_type))
        })
    }
}

/// The SQLite URL of one service's database under the data directory.
pub fn sqlite_url(data: &std::path::Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db?mode=rwc", data.display())
}

/// Reads a dev secret file, creating it (mode 0600) with `make` the first time.
fn dev_secret(path: &std::path::Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if path.exists() {
        return std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()));
    }
    let secret = make();
    write_private(path, &secret)?;
    Ok(secret)
}

/// Applies audit retention now and then daily, in the background.
pub fn spawn_retention(audit: Audit) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(24 * 3600));
        loop {
            every.tick().await;
            match audit.apply_retention().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(dropped = n, "audit retention: entry bodies dropped"),
                Err(err) => tracing::error!(error = format!("{err:#}"), "audit retention failed"),
            }
        }
    });
}
