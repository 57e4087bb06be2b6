//! `schakel dev`: every service in one process, on one TLS port, with
//! embedded SQLite, a generated development CA and demo data.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use std::io::Write as _;

use anyhow::Context;
use schakel_audit::AuditConfig;
use schakel_broker::keys::Keyring;
use schakel_identity::{IdentityConfig, MasterKey};
use schakel_kit::client::CallContext;
use schakel_kit::crypto::SecretKey;
use schakel_kit::{
    config::{AuthConfig, ServerConfig, TlsFiles},
    devca::{ensure_dev_pki, write_private},
    server::{App, shutdown_signal},
};
use schakel_proto::v1::{
    self as pb, broker_service_client::BrokerServiceClient,
    identity_service_client::IdentityServiceClient, issue_token_request::Grant,
};

use crate::all::{AllServices, Keys, Settings};

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
    let master = dev_secret(&data.join("master.key"), || {
        MasterKey::generate().to_base64()
    })?;
    let broker_key = dev_secret(&data.join("broker-master.key"), || {
        SecretKey::generate().to_base64()
    })?;
    let services = AllServices::connect(
        |service| Ok(sqlite_url(data, service)),
        &Settings {
            identity: IdentityConfig::default(),
            auth: auth.clone(),
            audit: AuditConfig::default(),
            retention: schakel_broker::BrokerConfig::default().retention,
            process: Default::default(),
        },
        Keys {
            identity_master: MasterKey::from_base64(&master)?,
            audit_signing: schakel_audit::signing_key_from_base64(&audit_key)?,
            broker: Keyring::new(SecretKey::from_base64(&broker_key)?, []),
        },
    )
    .await?;
    let accounts_file = data.join("dev-accounts.json");
    let accounts = schakel_identity::dev::seed(&services.identity, &accounts_file).await?;
    let identity_db = services.identity.database().clone();
    let organisations = schakel_identity::store::list_organisations(
        identity_db.pool(),
        "",
        schakel_identity::dev::DEV_REGION,
        "",
        500,
    )
    .await?;
    let parties: Vec<String> = organisations.iter().map(|o| o.id.clone()).collect();
    let agreement_id = schakel_legal_basis::dev::seed(&services.legal_basis, &parties).await?;
    let policy_version = services.policies.active().version.version;
    let audit_origin = services.audit.log().origin().to_owned();
    let audit_key = services.audit.log().verifier_key().to_string();

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
    let (routes, names, verifier) = services.into_routes(auth, &limits);
    let app = App::build(server, routes, names, verifier).await?;

    let url = format!("https://{}", app.local_addr());
    let organisations: HashMap<String, String> = organisations
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
    let seeded = match seed_family(&url, &pki.ca, &accounts, &organisations, seeded_at(data)?).await
    {
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
        "  audit log: {audit_origin} (verifier key {audit_key})"
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
        "  SCHAKEL_USERNAME=privacy.officer SCHAKEL_PASSWORD=<...> cargo run -- audit verify --verifier-key '{audit_key}'"
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
    seeded_at: i64,
) -> anyhow::Result<schakel_broker::seed::Seeded> {
    let seed = schakel_broker::seed::family_000();
    let channel = schakel_kit::client::channel(url, schakel_kit::tls::client_config(ca, None)?)?;
    // A professional of `ptype` logged in: their broker client.
    let member = async |ptype: &str| -> anyhow::Result<schakel_broker::seed::Member> {
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
        Ok(schakel_broker::seed::Member {
            client: BrokerServiceClient::with_interceptor(
                channel.clone(),
                CallContext::with_token(Some(token)),
            ),
            organisation_id: organisations
                .get(ptype)
                .with_context(|| format!("no dev organisation of type {ptype}"))?
                .clone(),
        })
    };
    // Every start sends the same registration (informed at the first
    // start), which a restart's idempotent retry requires.
    let now = seeded_at;
    // After the first start the registration finds the dossier: only the
    // registrant logs in.
    let registrant = member(&seed.registrant).await?;
    let seeded = seed.register(&registrant.client, now).await?;
    if seeded.created {
        let mut members = HashMap::from([(seed.registrant.clone(), registrant)]);
        for ptype in &seed.circle {
            members.insert(ptype.clone(), member(ptype).await?);
        }
        seed.build_up(&seeded.dossier_id, &members).await?;
    }
    Ok(seeded)
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

/// When the seed family was (fictionally) informed: the first start's time,
/// kept in the data directory so that later starts repeat the registration
/// exactly.
fn seeded_at(data: &std::path::Path) -> anyhow::Result<i64> {
    let file = data.join("seed-informed-at");
    if let Ok(text) = std::fs::read_to_string(&file) {
        return text
            .trim()
            .parse()
            .context("seed-informed-at holds no time");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    std::fs::write(&file, now.to_string()).context("writing seed-informed-at")?;
    Ok(now)
}
