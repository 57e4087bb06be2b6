//! The first coordinators of a new deployment. Every admin RPC needs a
//! coordinator's token, and every oversight account after these needs a
//! second coordinator's approval (four-eyes), so the first two are created
//! offline, directly in the identity database, one per run, and only while
//! fewer than two exist. They must be two different people.

use schakel_kit::auth::Role;
use schakel_proto::v1 as pb;

use crate::{
    Identity,
    error::{Error, Result},
    kbo::KboNumber,
    model,
    password::generate_secret,
    store,
};

/// What the first coordinator and their organisation look like.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// Organisation name, e.g. "Justitiehuis Leuven".
    pub organisation_name: String,
    /// Partner type code (normally `justitiehuis`).
    pub partner_type: String,
    /// Judicial district.
    pub region: String,
    /// KBO number.
    pub kbo_number: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Password; empty to generate one.
    pub password: String,
}

/// What was created.
#[derive(Clone, Debug)]
pub struct Bootstrapped {
    /// The organisation (reused when one with this KBO number exists).
    pub organisation: pb::Organisation,
    /// The coordinator.
    pub user: pb::User,
    /// The generated password, if none was given.
    pub generated_password: Option<String>,
}

/// How many coordinators the bootstrap may create: enough for the first
/// four-eyes approval.
pub const BOOTSTRAP_COORDINATORS: usize = 2;

/// Creates one of the first two coordinators; FAILED_PRECONDITION when two exist.
pub async fn bootstrap(identity: &Identity, request: Bootstrap) -> Result<Bootstrapped> {
    let pool = identity.database().pool();
    let name = model::label("organisation_name", &request.organisation_name)?;
    let partner_type = model::partner_type_code("partner_type", &request.partner_type)?;
    let region = model::region("region", &request.region)?;
    let kbo = KboNumber::parse(&request.kbo_number).map_err(|m| Error::invalid("kbo_number", m))?;
    let username = model::username("username", &request.username)?;
    let display_name = model::label("display_name", &request.display_name)?;
    if !request.password.is_empty() && request.password.chars().count() < 12 {
        return Err(Error::invalid("password", "must be at least 12 characters"));
    }
    if store::count_users_with_role(pool, Role::Coordinator).await? >= BOOTSTRAP_COORDINATORS {
        return Err(Error::Precondition {
            reason: "ALREADY_BOOTSTRAPPED",
            message: "two coordinators exist; create users through the CLI as one of them \
                      (the other approves oversight accounts)"
                .into(),
        });
    }
    if !store::partner_type_exists(pool, &partner_type).await? {
        return Err(Error::invalid(
            "partner_type",
            format!("unknown partner type {partner_type}"),
        ));
    }
    let now = identity.inner.clock_now();
    let organisation = match store::find_organisation_by_kbo(pool, kbo.as_str()).await? {
        Some(org) => org,
        None => {
            let org = pb::Organisation {
                id: uuid::Uuid::new_v4().to_string(),
                name,
                partner_type,
                region,
                kbo_number: kbo.to_string(),
                created_at: Some(schakel_kit::time::to_timestamp(now)),
            };
            store::insert_organisation(&mut *pool.acquire().await?, &org, now).await?;
            org
        }
    };
    let generated = request.password.is_empty().then(|| generate_secret(24));
    let password = generated.clone().unwrap_or(request.password);
    let hash = identity.inner.hash(password).await?;
    let user = pb::User {
        id: uuid::Uuid::new_v4().to_string(),
        username,
        display_name,
        organisation_id: organisation.id.clone(),
        roles: vec![Role::Coordinator.to_proto() as i32],
        disabled: false,
        created_at: Some(schakel_kit::time::to_timestamp(now)),
        ..Default::default()
    };
    store::insert_user(
        &mut *pool.acquire().await?,
        &user,
        &[Role::Coordinator],
        &hash,
        now,
    )
    .await?;
    tracing::info!(user = %user.id, organisation = %organisation.id, "first coordinator bootstrapped");
    Ok(Bootstrapped {
        organisation,
        user,
        generated_password: generated,
    })
}
