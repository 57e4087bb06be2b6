//! Every broker RPC in one table: the audit action it records, the role
//! class that may call it, whether it is a case-team action on the dossier,
//! and whether informing the client system counts. The match is exhaustive:
//! an RPC without a row does not compile, and a test checks the table
//! against the service's descriptor.

use schakel_proto::v1::AuditAction;

/// Who may call an RPC at all (checked before anything else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Professionals and partner systems with a content role (aanmelder,
    /// team member, casusregisseur).
    Content,
    /// Those who register dossiers: an aanmelder or team member.
    Registrar,
    /// Privacy officers (users of a partner); never Schakel's own services:
    /// the retention job runs inside the broker.
    Oversight,
    /// Coordinators (users): aggregate figures, never a dossier.
    Coordinator,
}

/// Whether the client system must have been informed (victims informed,
/// perpetrators informed or deferred) for this RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Informing {
    /// As the dossier's phase requires: beyond registration, yes. For every
    /// call that reads or writes content.
    ByPhase,
    /// Not checked: calls that manage the circle, the phase and informing
    /// itself, which reveal or change no content (the legal basis still counts).
    NotRequired,
}

/// The gates of one RPC.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub(crate) action: AuditAction,
    pub(crate) class: Class,
    /// Only a team member or the dossier's casusregisseur.
    pub(crate) team: bool,
    pub(crate) informing: Informing,
}

/// The broker's RPCs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rpc {
    RegisterDossier,
    GetDossier,
    ListDossiers,
    AddPerson,
    AddParticipant,
    RemoveParticipant,
    AssignCaseDirector,
    AdvancePhase,
    Contribute,
    UpdateInforming,
    GetInformingStatus,
    RequestInformation,
    GetInformationRequest,
    ListInformationRequests,
    AnswerInformationRequest,
    DeclineInformationRequest,
    CancelInformationRequest,
    EraseDossier,
    LookupDataSubject,
    RecordReview,
    GetWeeklyTable,
    WatchEvents,
    GetFigures,
}

impl Rpc {
    /// Every RPC.
    #[cfg(test)]
    pub(crate) const ALL: [Rpc; 23] = [
        Rpc::RegisterDossier,
        Rpc::GetDossier,
        Rpc::ListDossiers,
        Rpc::AddPerson,
        Rpc::AddParticipant,
        Rpc::RemoveParticipant,
        Rpc::AssignCaseDirector,
        Rpc::AdvancePhase,
        Rpc::Contribute,
        Rpc::UpdateInforming,
        Rpc::GetInformingStatus,
        Rpc::RequestInformation,
        Rpc::GetInformationRequest,
        Rpc::ListInformationRequests,
        Rpc::AnswerInformationRequest,
        Rpc::DeclineInformationRequest,
        Rpc::CancelInformationRequest,
        Rpc::EraseDossier,
        Rpc::LookupDataSubject,
        Rpc::RecordReview,
        Rpc::GetWeeklyTable,
        Rpc::WatchEvents,
        Rpc::GetFigures,
    ];

    /// The RPC's gates.
    pub(crate) fn row(self) -> Row {
        use AuditAction as A;
        use Class::{Content, Coordinator, Oversight, Registrar};
        use Informing::{ByPhase, NotRequired};
        let (action, class, team, informing) = match self {
            Rpc::RegisterDossier => (A::DossierRegister, Registrar, false, NotRequired),
            Rpc::GetDossier => (A::DossierRead, Content, false, ByPhase),
            Rpc::ListDossiers => (A::DossierList, Content, false, NotRequired),
            Rpc::AddPerson => (A::PersonAdd, Content, false, ByPhase),
            Rpc::AddParticipant => (A::ParticipantAdd, Content, true, NotRequired),
            Rpc::RemoveParticipant => (A::ParticipantRemove, Content, true, NotRequired),
            Rpc::AssignCaseDirector => (A::CaseDirectorAssign, Content, true, NotRequired),
            Rpc::AdvancePhase => (A::PhaseAdvance, Content, true, NotRequired),
            Rpc::Contribute => (A::Contribute, Content, false, ByPhase),
            Rpc::UpdateInforming => (A::InformingUpdate, Content, false, NotRequired),
            Rpc::GetInformingStatus => (A::InformingRead, Content, false, NotRequired),
            Rpc::RequestInformation => (A::InformationRequestCreate, Content, false, ByPhase),
            Rpc::GetInformationRequest => (A::InformationRequestRead, Content, false, ByPhase),
            Rpc::ListInformationRequests => (A::InformationRequestRead, Content, false, ByPhase),
            Rpc::AnswerInformationRequest => (A::InformationRequestAnswer, Content, false, ByPhase),
            Rpc::DeclineInformationRequest => {
                (A::InformationRequestDecline, Content, false, ByPhase)
            }
            Rpc::CancelInformationRequest => (A::InformationRequestCancel, Content, false, ByPhase),
            Rpc::EraseDossier => (A::DossierErase, Oversight, false, NotRequired),
            Rpc::LookupDataSubject => (A::DataSubjectLookup, Oversight, false, NotRequired),
            Rpc::RecordReview => (A::TrackReview, Content, true, NotRequired),
            Rpc::GetWeeklyTable => (A::WeeklyTableRead, Content, false, NotRequired),
            Rpc::WatchEvents => (A::EventDeliver, Content, false, NotRequired),
            Rpc::GetFigures => (A::FiguresRead, Coordinator, false, NotRequired),
        };
        Row {
            action,
            class,
            team,
            informing,
        }
    }

    /// The method name in broker.proto (also the key of kept replies).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rpc::RegisterDossier => "RegisterDossier",
            Rpc::GetDossier => "GetDossier",
            Rpc::ListDossiers => "ListDossiers",
            Rpc::AddPerson => "AddPerson",
            Rpc::AddParticipant => "AddParticipant",
            Rpc::RemoveParticipant => "RemoveParticipant",
            Rpc::AssignCaseDirector => "AssignCaseDirector",
            Rpc::AdvancePhase => "AdvancePhase",
            Rpc::Contribute => "Contribute",
            Rpc::UpdateInforming => "UpdateInforming",
            Rpc::GetInformingStatus => "GetInformingStatus",
            Rpc::RequestInformation => "RequestInformation",
            Rpc::GetInformationRequest => "GetInformationRequest",
            Rpc::ListInformationRequests => "ListInformationRequests",
            Rpc::AnswerInformationRequest => "AnswerInformationRequest",
            Rpc::DeclineInformationRequest => "DeclineInformationRequest",
            Rpc::CancelInformationRequest => "CancelInformationRequest",
            Rpc::EraseDossier => "EraseDossier",
            Rpc::LookupDataSubject => "LookupDataSubject",
            Rpc::RecordReview => "RecordReview",
            Rpc::GetWeeklyTable => "GetWeeklyTable",
            Rpc::WatchEvents => "WatchEvents",
            Rpc::GetFigures => "GetFigures",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn the_table_has_a_row_for_every_method_of_the_service_and_no_other() {
        let set = prost_types::FileDescriptorSet::decode(schakel_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let service = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .find(|s| s.name() == "BrokerService")
            .expect("BrokerService");
        let mut methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let mut rows: Vec<&str> = Rpc::ALL.iter().map(|r| r.name()).collect();
        methods.sort_unstable();
        rows.sort_unstable();
        assert_eq!(methods, rows);
    }

    #[test]
    fn content_is_never_for_oversight_and_team_actions_are_content_calls() {
        for rpc in Rpc::ALL {
            let row = rpc.row();
            if row.team {
                assert_eq!(row.class, Class::Content, "{rpc:?}");
            }
            if row.informing == Informing::ByPhase {
                assert_eq!(row.class, Class::Content, "{rpc:?}");
            }
        }
        let oversight: Vec<Rpc> = Rpc::ALL
            .into_iter()
            .filter(|r| r.row().class == Class::Oversight)
            .collect();
        assert_eq!(oversight, [Rpc::EraseDossier, Rpc::LookupDataSubject]);
        let coordinator: Vec<Rpc> = Rpc::ALL
            .into_iter()
            .filter(|r| r.row().class == Class::Coordinator)
            .collect();
        assert_eq!(coordinator, [Rpc::GetFigures]);
    }
}
