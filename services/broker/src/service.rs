//! The tonic service: every RPC is served through the pipeline
//! ([`serve!`]: admit by role class, the handler behind its gates, the
//! refusal recorded), one line per RPC.

use schakel_proto::v1::{self as pb, broker_service_server::BrokerService};
use tonic::{Request, Response, Status};

use crate::{
    Broker, circle, contribute, dossier, informing, notices, oversight, pipeline::serve, requests,
};

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl BrokerService for Broker {
    type WatchEventsStream = notices::Events;

    async fn register_dossier(
        &self,
        request: Request<pb::RegisterDossierRequest>,
    ) -> Reply<pb::RegisterDossierResponse> {
        serve!(self, RegisterDossier, request, dossier::register::register)
    }
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Reply<pb::GetDossierResponse> {
        serve!(self, GetDossier, request, dossier::read::read)
    }
    async fn list_dossiers(
        &self,
        request: Request<pb::ListDossiersRequest>,
    ) -> Reply<pb::ListDossiersResponse> {
        serve!(self, ListDossiers, request, dossier::list::list)
    }
    async fn add_person(
        &self,
        request: Request<pb::AddPersonRequest>,
    ) -> Reply<pb::AddPersonResponse> {
        serve!(self, AddPerson, request, dossier::person::add_person)
    }
    async fn add_participant(
        &self,
        request: Request<pb::AddParticipantRequest>,
    ) -> Reply<pb::AddParticipantResponse> {
        serve!(self, AddParticipant, request, circle::participants::add)
    }
    async fn remove_participant(
        &self,
        request: Request<pb::RemoveParticipantRequest>,
    ) -> Reply<pb::RemoveParticipantResponse> {
        serve!(
            self,
            RemoveParticipant,
            request,
            circle::participants::remove
        )
    }
    async fn assign_case_director(
        &self,
        request: Request<pb::AssignCaseDirectorRequest>,
    ) -> Reply<pb::AssignCaseDirectorResponse> {
        serve!(self, AssignCaseDirector, request, circle::director::assign)
    }
    async fn advance_phase(
        &self,
        request: Request<pb::AdvancePhaseRequest>,
    ) -> Reply<pb::AdvancePhaseResponse> {
        serve!(self, AdvancePhase, request, dossier::advance::advance)
    }
    async fn contribute(
        &self,
        request: Request<pb::ContributeRequest>,
    ) -> Reply<pb::ContributeResponse> {
        serve!(self, Contribute, request, contribute::contribute)
    }
    async fn update_informing(
        &self,
        request: Request<pb::UpdateInformingRequest>,
    ) -> Reply<pb::UpdateInformingResponse> {
        serve!(self, UpdateInforming, request, informing::update)
    }
    async fn get_informing_status(
        &self,
        request: Request<pb::GetInformingStatusRequest>,
    ) -> Reply<pb::GetInformingStatusResponse> {
        serve!(self, GetInformingStatus, request, informing::status)
    }
    async fn request_information(
        &self,
        request: Request<pb::RequestInformationRequest>,
    ) -> Reply<pb::RequestInformationResponse> {
        serve!(self, RequestInformation, request, requests::ask::ask)
    }
    async fn get_information_request(
        &self,
        request: Request<pb::GetInformationRequestRequest>,
    ) -> Reply<pb::GetInformationRequestResponse> {
        serve!(self, GetInformationRequest, request, requests::view::get)
    }
    async fn list_information_requests(
        &self,
        request: Request<pb::ListInformationRequestsRequest>,
    ) -> Reply<pb::ListInformationRequestsResponse> {
        serve!(self, ListInformationRequests, request, requests::view::list)
    }
    async fn answer_information_request(
        &self,
        request: Request<pb::AnswerInformationRequestRequest>,
    ) -> Reply<pb::AnswerInformationRequestResponse> {
        serve!(
            self,
            AnswerInformationRequest,
            request,
            requests::answer::answer
        )
    }
    async fn decline_information_request(
        &self,
        request: Request<pb::DeclineInformationRequestRequest>,
    ) -> Reply<pb::DeclineInformationRequestResponse> {
        serve!(
            self,
            DeclineInformationRequest,
            request,
            requests::close::decline
        )
    }
    async fn cancel_information_request(
        &self,
        request: Request<pb::CancelInformationRequestRequest>,
    ) -> Reply<pb::CancelInformationRequestResponse> {
        serve!(
            self,
            CancelInformationRequest,
            request,
            requests::close::cancel
        )
    }
    async fn erase_dossier(
        &self,
        request: Request<pb::EraseDossierRequest>,
    ) -> Reply<pb::EraseDossierResponse> {
        serve!(self, EraseDossier, request, oversight::erase::erase)
    }
    async fn lookup_data_subject(
        &self,
        request: Request<pb::LookupDataSubjectRequest>,
    ) -> Reply<pb::LookupDataSubjectResponse> {
        serve!(self, LookupDataSubject, request, oversight::lookup::lookup)
    }
    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Reply<pb::RecordReviewResponse> {
        serve!(self, RecordReview, request, dossier::review::review)
    }
    async fn get_weekly_table(
        &self,
        request: Request<pb::GetWeeklyTableRequest>,
    ) -> Reply<pb::GetWeeklyTableResponse> {
        serve!(self, GetWeeklyTable, request, dossier::table::table)
    }
    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        serve!(self, WatchEvents, request, notices::watch)
    }
    async fn get_figures(
        &self,
        request: Request<pb::GetFiguresRequest>,
    ) -> Reply<pb::GetFiguresResponse> {
        serve!(self, GetFigures, request, dossier::figures::figures)
    }
}
