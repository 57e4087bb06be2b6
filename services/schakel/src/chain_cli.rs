//! `schakel chain`: the chain process around the phases, for case teams
//! (the weekly table, track reviews, following events) and coordinators
//! (the year in figures).

use schakel_broker::json::enum_value;
use schakel_proto::v1 as pb;

use crate::{
    connect::Connection,
    dossier_cli::print_dossier_line,
    text::{enum_short, parse_time, show_time},
};

/// Chain process commands.
#[derive(clap::Subcommand)]
pub enum ChainCommand {
    /// The weekly expert table's agenda for a district: new registrations,
    /// reviews, follow-up checks and deferred informing due, overdue requests.
    Table {
        /// Judicial district code.
        #[arg(long)]
        district: String,
        /// The table's day (RFC 3339; default now).
        #[arg(long)]
        date: Option<String>,
    },
    /// Record that the case team reviewed a dossier's track.
    Review {
        dossier_id: String,
        /// What the review concluded (kept, sealed, in the dossier's history).
        #[arg(long)]
        reason: String,
    },
    /// Follow your organisation's events (requests, phases, due dates).
    Watch {
        /// Resume after this cursor.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Only this dossier's events.
        #[arg(long, default_value = "")]
        dossier: String,
        /// Stop after this many events (default: follow until interrupted).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Counts of dossiers registered in a period (coordinators); counts of
    /// 1 to 4 print as "<5".
    Figures {
        /// Registered from (RFC 3339).
        #[arg(long)]
        from: String,
        /// Registered before (RFC 3339).
        #[arg(long)]
        until: String,
        /// Group by: period, district, track, outcome, registering_partner_type.
        #[arg(long = "by")]
        by: Vec<String>,
        /// Period length when grouping by period: year, quarter, month.
        #[arg(long, default_value = "year")]
        period: String,
        /// Only this district.
        #[arg(long, default_value = "")]
        district: String,
    },
}

fn count(value: u32, suppressed: bool) -> String {
    if suppressed {
        format!("<{}", schakel_broker::process::SUPPRESSION_THRESHOLD)
    } else {
        value.to_string()
    }
}

fn print_event(e: &pb::BrokerEvent) {
    println!(
        "{}\t{}\t{}\t{}\t{}\tdue {}",
        e.cursor,
        show_time(e.at.as_ref()),
        enum_short(
            e.kind,
            pb::BrokerEventKind::as_str_name,
            "BROKER_EVENT_KIND_"
        ),
        e.dossier_id,
        if e.request_id.is_empty() {
            "-"
        } else {
            &e.request_id
        },
        show_time(e.due_at.as_ref()),
    );
}

fn print_cell(cell: &pb::FigureCell, by: &[pb::FigureDimension]) {
    use pb::FigureDimension as D;
    let mut columns: Vec<String> = by
        .iter()
        .map(|d| match d {
            D::Period => cell.period.clone(),
            D::District => cell.district.clone(),
            D::Track => enum_short(cell.track, pb::Track::as_str_name, "TRACK_"),
            D::Outcome => enum_short(cell.outcome, pb::Phase::as_str_name, "PHASE_"),
            D::RegisteringPartnerType | D::Unspecified => cell.registering_partner_type.clone(),
        })
        .collect();
    columns.push(count(cell.count, cell.suppressed));
    println!("{}", columns.join("\t"));
}

type Broker = schakel_broker::Client;

async fn table(broker: &mut Broker, district: String, date: Option<String>) -> anyhow::Result<()> {
    let date = date.map(|d| parse_time("date", &d)).transpose()?;
    let table = broker
        .get_weekly_table(pb::GetWeeklyTableRequest { district, date })
        .await?
        .into_inner();
    println!(
        "week {} - {}",
        show_time(table.from.as_ref()),
        show_time(table.until.as_ref())
    );
    for d in &table.dossiers {
        let items: Vec<String> = d
            .items
            .iter()
            .map(|i| enum_short(*i, pb::AgendaItem::as_str_name, "AGENDA_ITEM_"))
            .collect();
        print!("{}\t", items.join(","));
        print_dossier_line(d.dossier.as_ref().unwrap_or(&pb::Dossier::default()));
    }
    for r in &table.overdue_requests {
        println!(
            "overdue request\t{}\t{}\t{} -> {}\tdue {}",
            r.request_id,
            r.dossier_id,
            r.from_organisation_id,
            r.to_organisation_id,
            show_time(r.due_at.as_ref())
        );
    }
    Ok(())
}

async fn watch(
    broker: &mut Broker,
    request: pb::WatchEventsRequest,
    count: Option<usize>,
) -> anyhow::Result<()> {
    let mut stream = broker.watch_events(request).await?.into_inner();
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let Some(event) = stream.message().await? else {
            break;
        };
        print_event(&event);
        seen += 1;
    }
    Ok(())
}

async fn figures(
    broker: &mut Broker,
    registered: pb::TimeRange,
    by: &[String],
    period: &str,
    district: String,
) -> anyhow::Result<()> {
    let group_by = by
        .iter()
        .map(|d| {
            enum_value(
                "FIGURE_DIMENSION",
                d,
                pb::FigureDimension::from_str_name,
                "--by",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let period = enum_value(
        "FIGURE_PERIOD",
        period,
        pb::FigurePeriod::from_str_name,
        "--period",
    )?;
    let figures = broker
        .get_figures(pb::GetFiguresRequest {
            registered: Some(registered),
            group_by: group_by.iter().map(|d| *d as i32).collect(),
            period: period as i32,
            district,
        })
        .await?
        .into_inner();
    for cell in &figures.cells {
        print_cell(cell, &group_by);
    }
    println!("total\t{}", count(figures.total, figures.total_suppressed));
    Ok(())
}

/// Runs a chain command.
pub async fn run(connection: &Connection, command: ChainCommand) -> anyhow::Result<()> {
    let mut broker = connection.broker().await?;
    match command {
        ChainCommand::Table { district, date } => table(&mut broker, district, date).await,
        ChainCommand::Review { dossier_id, reason } => {
            let reviewed = broker
                .record_review(pb::RecordReviewRequest { dossier_id, reason })
                .await?
                .into_inner();
            let dossier = reviewed.dossier.unwrap_or_default();
            println!("next review {}", show_time(dossier.review_due_at.as_ref()));
            Ok(())
        }
        ChainCommand::Watch {
            after,
            dossier,
            count,
        } => {
            let request = pb::WatchEventsRequest {
                after,
                dossier_id: dossier,
            };
            watch(&mut broker, request, count).await
        }
        ChainCommand::Figures {
            from,
            until,
            by,
            period,
            district,
        } => {
            let registered = pb::TimeRange {
                from: Some(parse_time("from", &from)?),
                until: Some(parse_time("until", &until)?),
            };
            figures(&mut broker, registered, &by, &period, district).await
        }
    }
}
