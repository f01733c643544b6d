"""Imports every model so that Alembic and the mappers see the whole schema."""

from telesante.audit.models import AuditEvent
from telesante.auth.models import Account, ApiToken, ExternalIdentity, LoginAttempt, WebSession
from telesante.consents.models import Consent, InformationText
from telesante.directory.models import Membership, Organisation, OrganisationService, Professional
from telesante.imaging.models import (
    DicomPeer,
    ImagingInstance,
    ImagingSeries,
    ImagingStudy,
    RequestStudy,
)
from telesante.jobs.models import ScheduledJob
from telesante.kit.models import Base
from telesante.monitoring.models import (
    Alert,
    Device,
    EducationSession,
    Enrolment,
    MonitoringProgramme,
    Observation,
)
from telesante.offers.models import Offer, OfferRequester
from telesante.oncall.models import (
    CalendarFeed,
    Page,
    PageEvent,
    Rota,
    RotaOrganisation,
    Shift,
    ShiftChange,
    ShiftPattern,
)
from telesante.patients.models import (
    BreakGlassAccess,
    CareRelationship,
    IdentityStatusChange,
    Patient,
    PatientLocalIdentifier,
)
from telesante.requests.models import (
    RequestAttachment,
    RequestMessage,
    RequestReport,
    RequestTransition,
    TeleRequest,
)
from telesante.scheduling.models import (
    Appointment,
    AvailabilityException,
    AvailabilityPattern,
    SiteStaff,
    Slot,
    TeleconsultationSite,
    WaitingEntry,
)
from telesante.stroke.models import NihssAssessment, StrokeCase, StrokeMilestone
from telesante.teleradiology.models import ExamJustification
from telesante.video.models import CallEvent, CallMessage, GuestLink, VideoRoom

__all__ = [
    "Account",
    "Alert",
    "Device",
    "EducationSession",
    "Enrolment",
    "MonitoringProgramme",
    "Observation",
    "NihssAssessment",
    "StrokeCase",
    "StrokeMilestone",
    "CallEvent",
    "CallMessage",
    "GuestLink",
    "VideoRoom",
    "WaitingEntry",
    "Appointment",
    "AvailabilityException",
    "AvailabilityPattern",
    "SiteStaff",
    "Slot",
    "TeleconsultationSite",
    "ApiToken",
    "AuditEvent",
    "Base",
    "BreakGlassAccess",
    "CalendarFeed",
    "CareRelationship",
    "Consent",
    "DicomPeer",
    "ExamJustification",
    "ExternalIdentity",
    "IdentityStatusChange",
    "ImagingInstance",
    "ImagingSeries",
    "ImagingStudy",
    "RequestStudy",
    "InformationText",
    "LoginAttempt",
    "Membership",
    "Offer",
    "OfferRequester",
    "Organisation",
    "OrganisationService",
    "Page",
    "PageEvent",
    "Patient",
    "PatientLocalIdentifier",
    "Professional",
    "RequestAttachment",
    "RequestMessage",
    "RequestReport",
    "RequestTransition",
    "Rota",
    "RotaOrganisation",
    "ScheduledJob",
    "Shift",
    "ShiftChange",
    "ShiftPattern",
    "TeleRequest",
    "WebSession",
]
