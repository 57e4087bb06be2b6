//! What the figures count: dossier metadata only, never content.

use sqlx::{AnyPool, Row};

/// One registered dossier as the figures see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    /// When registered.
    pub registered_at: i64,
    /// Judicial district.
    pub district: String,
    /// The decided track, or the one asked for before triage.
    pub track: i32,
    /// The phase now.
    pub phase: i32,
    /// The registering organisation's partner type.
    pub registering_partner_type: String,
}

/// The dossiers registered in `[from, until)` (of `district`, or all).
pub async fn counted(
    pool: &AnyPool,
    from: i64,
    until: i64,
    district: &str,
) -> anyhow::Result<Vec<Counted>> {
    let rows = sqlx::query(
        "SELECT d.registered_at, d.district, d.track, d.requested_track, d.phase, \
         p.partner_type FROM dossiers d LEFT JOIN participants p \
         ON p.dossier_id = d.dossier_id AND p.registrant = 1 \
         WHERE d.registered_at >= $1 AND d.registered_at < $2 AND ($3 = '' OR d.district = $3)",
    )
    .bind(from)
    .bind(until)
    .bind(district)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let int = |name: &str| -> anyhow::Result<i32> {
                Ok(i32::try_from(r.try_get::<i64, _>(name)?)?)
            };
            let track = match int("track")? {
                0 => int("requested_track")?,
                decided => decided,
            };
            Ok(Counted {
                registered_at: r.try_get("registered_at")?,
                district: r.try_get("district")?,
                track,
                phase: int("phase")?,
                registering_partner_type: r
                    .try_get::<Option<String>, _>("partner_type")?
                    .unwrap_or_default(),
            })
        })
        .collect()
}
