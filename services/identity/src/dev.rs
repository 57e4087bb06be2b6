//! The development seed for `schakel dev`: one organisation per kernpartner in
//! district `leuven` and users for every role. Idempotent; the passwords live
//! in `<data-dir>/dev-accounts.json` (mode 0600) and are kept across restarts.

use std::{collections::HashMap, path::Path};

use anyhow::Context;
use schakel_kit::{auth::Role, devca::write_private};
use schakel_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::{Identity, kbo::KboNumber, model::roles_to_text, password::generate_secret, store};

/// The district every dev organisation is in.
pub const DEV_REGION: &str = "leuven";

/// One line of `dev-accounts.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DevAccount {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Organisation name.
    pub organisation: String,
    /// Partner type code of the organisation.
    pub partner_type: String,
    /// Role codes.
    pub roles: Vec<String>,
}

/// The seeded organisations: partner type, name, KBO base digits (the
/// first eight, starting with 0 as every KBO number does; fictional).
const ORGANISATIONS: [(&str, &str, u32); 8] = [
    ("politie", "PZ Leuven", 9_990_001),
    ("parket", "Parket Leuven", 9_990_002),
    ("caw", "CAW Oost-Brabant", 9_990_003),
    (
        "vk",
        "Vertrouwenscentrum Kindermishandeling Vlaams-Brabant",
        9_990_004,
    ),
    ("ggz", "GGZ-netwerk Leuven", 9_990_005),
    ("justitiehuis", "Justitiehuis Leuven", 9_990_006),
    ("ocj", "OCJ Vlaams-Brabant", 9_990_007),
    ("veilig_huis", "Veilig Huis Leuven", 9_990_008),
];

/// The seeded people: user name, display name, partner type, roles.
fn people() -> Vec<(String, String, &'static str, Vec<Role>)> {
    let mut people = vec![(
        "aanmelder.politie".to_owned(),
        "Aanmelder PZ Leuven".to_owned(),
        "politie",
        vec![Role::Aanmelder],
    )];
    for (ptype, name, _) in ORGANISATIONS {
        people.push((
            format!("team.{ptype}"),
            format!("Teamlid {name}"),
            ptype,
            vec![Role::Aanmelder, Role::TeamMember],
        ));
    }
    people.extend([
        (
            "casusregisseur".to_owned(),
            "Casusregisseur Veilig Huis".to_owned(),
            "veilig_huis",
            vec![Role::Casusregisseur, Role::TeamMember],
        ),
        (
            "privacy.officer".to_owned(),
            "DPO Veilig Huis".to_owned(),
            "veilig_huis",
            vec![Role::PrivacyOfficer],
        ),
        (
            "coordinator".to_owned(),
            "Coördinator Justitiehuis".to_owned(),
            "justitiehuis",
            vec![Role::Coordinator],
        ),
        (
            "coordinator2".to_owned(),
            "Tweede coördinator Justitiehuis".to_owned(),
            "justitiehuis",
            vec![Role::Coordinator],
        ),
    ]);
    people
}

/// Who the audit log names for what the dev seed creates.
fn seed_actor() -> pb::Actor {
    pb::Actor {
        subject: "svc-dev-seed".into(),
        kind: pb::PrincipalKind::InternalService as i32,
        ..Default::default()
    }
}

/// Seeds organisations and users and writes `accounts_file`. Users that exist
/// keep their password when it is in the file; otherwise they get a new one.
pub async fn seed(identity: &Identity, accounts_file: &Path) -> anyhow::Result<Vec<DevAccount>> {
    let pool = identity.database().pool();
    let known: HashMap<String, String> = match std::fs::read_to_string(accounts_file) {
        Ok(text) => serde_json::from_str::<Vec<DevAccount>>(&text)
            .map(|list| list.into_iter().map(|a| (a.username, a.password)).collect())
            .unwrap_or_default(),
        Err(_) => HashMap::new(),
    };
    let now = identity.inner.clock_now();
    let mut orgs = HashMap::new();
    for (ptype, name, base) in ORGANISATIONS {
        let kbo = KboNumber::from_base(base);
        let org = match store::find_organisation_by_kbo(pool, kbo.as_str()).await? {
            Some(org) => org,
            None => {
                let org = pb::Organisation {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: name.into(),
                    partner_type: ptype.into(),
                    region: DEV_REGION.into(),
                    kbo_number: kbo.to_string(),
                    created_at: None,
                };
                // The same audited change as CreateOrganisation, by the seed.
                let mut tx = identity.begin().await?;
                store::insert_organisation(&mut tx, &org, now).await?;
                let (id, ptype) = (org.id.as_str(), org.partner_type.as_str());
                identity
                    .stage(
                        &mut tx,
                        seed_actor(),
                        pb::AuditAction::OrganisationCreate,
                        crate::service::target(id, id),
                        &[("partner_type", ptype)],
                    )
                    .await?;
                tx.commit().await?;
                org
            }
        };
        orgs.insert(ptype, org);
    }

    let mut accounts = Vec::new();
    for (username, display_name, ptype, roles) in people() {
        let org = orgs.get(ptype).context("seeded organisation")?;
        let password = known.get(&username).cloned();
        let fresh = password.is_none();
        let password = password.unwrap_or_else(|| generate_secret(20));
        match store::find_user_by_username(pool, &username).await? {
            Some(user) if fresh => {
                let hash = identity.inner.hash(password.clone()).await?;
                store::set_password_hash(pool, &user.id, &hash).await?;
            }
            Some(_) => {}
            None => {
                let hash = identity.inner.hash(password.clone()).await?;
                let user = pb::User {
                    id: uuid::Uuid::new_v4().to_string(),
                    username: username.clone(),
                    display_name,
                    organisation_id: org.id.clone(),
                    ..Default::default()
                };
                // The same audited change as CreateUser, by the seed.
                let mut tx = identity.begin().await?;
                store::insert_user(&mut tx, &user, &roles, &hash, now).await?;
                let role_codes = roles_to_text(&roles).replace(',', "+");
                identity
                    .stage(
                        &mut tx,
                        seed_actor(),
                        pb::AuditAction::UserCreate,
                        crate::service::target(&user.organisation_id, &user.id),
                        &[("roles", &role_codes)],
                    )
                    .await?;
                tx.commit().await?;
            }
        }
        accounts.push(DevAccount {
            username,
            password,
            organisation: org.name.clone(),
            partner_type: ptype.into(),
            roles: roles_to_text(&roles)
                .split(',')
                .map(str::to_owned)
                .collect(),
        });
    }
    write_private(accounts_file, &serde_json::to_string_pretty(&accounts)?)?;
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_kbo_numbers_pass_the_products_own_check() {
        for (_, name, base) in ORGANISATIONS {
            let kbo = KboNumber::from_base(base);
            assert_eq!(KboNumber::parse(kbo.as_str()), Ok(kbo.clone()), "{name}");
        }
    }
}
