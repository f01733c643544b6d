"""Imports every model so that Alembic and the mappers see the whole schema."""

from telesante.audit.models import AuditEvent
from telesante.auth.models import Account, ApiToken, ExternalIdentity, LoginAttempt, WebSession
from telesante.consents.models import Consent, InformationText
from telesante.directory.models import Membership, Organisation, OrganisationService, Professional
from telesante.kit.models import Base
from telesante.patients.models import (
    BreakGlassAccess,
    CareRelationship,
    IdentityStatusChange,
    Patient,
    PatientLocalIdentifier,
)

__all__ = [
    "Account",
    "ApiToken",
    "AuditEvent",
    "Base",
    "BreakGlassAccess",
    "CareRelationship",
    "Consent",
    "ExternalIdentity",
    "IdentityStatusChange",
    "InformationText",
    "LoginAttempt",
    "Membership",
    "Organisation",
    "OrganisationService",
    "Patient",
    "PatientLocalIdentifier",
    "Professional",
    "WebSession",
]
