//! GetWeeklyTable: the agenda of the weekly expert table (seed 004) for a
//! district and a week: registrations awaiting triage, track reviews,
//! follow-up checks and deferred informing due that week, and the overdue
//! requests of the caller's organisation. Only dossiers in the caller's
//! circles that pass the circle and basis gates now, metadata only (as
//! ListDossiers), each in its own audit entry.

use std::collections::HashMap;

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Outcome, Scope},
    store::{self, DueDate, Within},
};

/// The table covers what falls due before this long after its day.
const WEEK: i64 = 7 * 24 * 3600;

/// How far from today a table's day may lie.
const YEAR: i64 = 366 * 24 * 3600;

/// The dossiers on the agenda, in order of appearance, with why.
async fn agenda(
    broker: &Broker,
    within: Within<'_>,
    until: i64,
) -> Outcome<Vec<(String, Vec<pb::AgendaItem>)>> {
    let mut conn = broker.inner.db.pool().acquire().await?;
    let mut agenda: Vec<(String, Vec<pb::AgendaItem>)> = Vec::new();
    let mut add = |id: String, item: pb::AgendaItem| match agenda.iter_mut().find(|(d, _)| *d == id)
    {
        Some((_, items)) => items.push(item),
        None => agenda.push((id, vec![item])),
    };
    for id in store::awaiting_triage(&mut conn, within).await? {
        add(id, pb::AgendaItem::NewRegistration);
    }
    let dates = [
        (DueDate::Review, pb::AgendaItem::ReviewDue),
        (DueDate::FollowUpCheck, pb::AgendaItem::FollowUpCheckDue),
        (DueDate::InformingReview, pb::AgendaItem::InformingReviewDue),
    ];
    for (date, item) in dates {
        for (id, _) in store::dates_due(&mut conn, date, until, within).await? {
            add(id, item);
        }
    }
    Ok(agenda)
}

/// What one table shows, with the scope of each item's audit entry.
#[derive(Default)]
struct Shown {
    gated: HashMap<String, Option<(pb::Dossier, Scope)>>,
    scopes: Vec<Scope>,
    dossiers: Vec<pb::WeeklyTableDossier>,
    overdue_requests: Vec<pb::OverdueRequest>,
}

impl Shown {
    async fn dossier(
        &mut self,
        broker: &Broker,
        call: &Call,
        id: &str,
        items: Vec<pb::AgendaItem>,
    ) -> Outcome<()> {
        if let Some((dossier, scope)) = gate(broker, call, &mut self.gated, id).await? {
            let mut scope = scope.clone();
            let names = items.iter().map(|i| super::figures::short(i.as_str_name()));
            scope
                .attributes
                .push(("agenda", names.collect::<Vec<_>>().join("+")));
            self.scopes.push(scope);
            self.dossiers.push(pb::WeeklyTableDossier {
                dossier: Some(dossier.clone()),
                items: items.into_iter().map(|i| i as i32).collect(),
            });
        }
        Ok(())
    }

    async fn request(&mut self, broker: &Broker, call: &Call, r: store::DueRequest) -> Outcome<()> {
        if let Some((_, scope)) = gate(broker, call, &mut self.gated, &r.dossier_id).await? {
            let mut scope = scope.clone();
            scope.resource_id = r.request_id.clone();
            self.scopes.push(scope);
            self.overdue_requests.push(pb::OverdueRequest {
                request_id: r.request_id,
                dossier_id: r.dossier_id,
                from_organisation_id: r.from_org,
                to_organisation_id: r.to_org,
                due_at: Some(to_timestamp(r.due_at)),
            });
        }
        Ok(())
    }
}

/// GetWeeklyTable.
pub(crate) async fn table(
    broker: &Broker,
    call: &Call,
    req: pb::GetWeeklyTableRequest,
) -> Outcome<pb::GetWeeklyTableResponse> {
    let district = validate::region("district", &req.district)?;
    let from = match &req.date {
        Some(t) => validate::timestamp("date", Some(t))?,
        None => call.now,
    };
    if (from - call.now).abs() > YEAR {
        return Err(Invalid::new("date", "a table lies within a year of today").into());
    }
    let until = from.saturating_add(WEEK);
    let within = Within {
        district: Some(&district),
        org: Some(&call.caller.organisation_id),
        unnoticed_at: None,
    };
    let mut shown = Shown::default();
    for (id, items) in agenda(broker, within, until).await? {
        shown.dossier(broker, call, &id, items).await?;
    }
    let registered = |d: &pb::WeeklyTableDossier| d.dossier.as_ref().and_then(|d| d.registered_at);
    shown
        .dossiers
        .sort_by_key(|d| registered(d).map(|t| t.seconds));
    let mut conn = broker.inner.db.pool().acquire().await?;
    // Overdue on the table's day: due at or before it, as ListInformationRequests says.
    for r in store::open_requests_due(&mut conn, from.saturating_add(1), within).await? {
        shown.request(broker, call, r).await?;
    }
    let audit_index = broker
        .record_each(call, shown.scopes, call.scope(""))
        .await?;
    Ok(pb::GetWeeklyTableResponse {
        from: Some(to_timestamp(from)),
        until: Some(to_timestamp(until)),
        dossiers: shown.dossiers,
        overdue_requests: shown.overdue_requests,
        audit_index,
    })
}

/// The circle and basis gates for one dossier, asked once per table.
async fn gate<'g>(
    broker: &Broker,
    call: &Call,
    gated: &'g mut HashMap<String, Option<(pb::Dossier, Scope)>>,
    id: &str,
) -> Outcome<&'g Option<(pb::Dossier, Scope)>> {
    if !gated.contains_key(id) {
        let covered = broker.covered_or_none(call, id).await?;
        let shown = covered.map(|c| (c.dossier().to_proto(call.now), c.scope()));
        gated.insert(id.to_owned(), shown);
    }
    Ok(gated.get(id).unwrap_or(&None))
}
