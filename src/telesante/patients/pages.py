"""Patient pages: trait search, registration (with identity-vigilance duplicate check), the patient record
(identity, RNIV status history, IPP, care relationships, consents, access log) and its forms.

Every read goes through the patient service, which scopes access (404 outside the principal's scope) and
writes the audit trail. When a form is re-rendered with an error the transaction is rolled back, so those
re-renders show only what the user typed, never patient data that would then go unaudited.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from pydantic import Field

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.auth.principal import Principal
from telesante.consents import service as consents_service
from telesante.consents.pages import CONSENT_LABELS
from telesante.directory import service as directory_service
from telesante.directory.models import CLINICAL_ROLES, SECRETARIAT_ROLES
from telesante.kit import communes
from telesante.kit.errors import Conflict, DomainError, InvalidInput
from telesante.kit.identifiers import INS_OIDS
from telesante.kit.pagination import Offset, PageRequest
from telesante.kit.schemas import InputModel, parse_input
from telesante.patients import service
from telesante.patients.models import CareRelationshipKind, Patient, Sex
from telesante.patients.repository import PatientCriteria
from telesante.patients.schemas import (
    IdentityStatusChangeCreate,
    LocalIdentifierCreate,
    PatientCreate,
    PatientUpdate,
    TraitsCorrection,
)
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

SEARCH_PAGE_SIZE = 20
LOG_PREVIEW_SIZE = 20
LOG_PAGE_SIZE = 50

FIELD_LABELS = {
    "nom": "Nom",
    "prenom": "Prénom",
    "naissance": "Date de naissance",
    "sexe": "Sexe",
    "ins": "Matricule INS",
    "ipp": "IPP",
    "organisation_id": "Établissement",
    "birth_family_name": "Nom de naissance",
    "birth_given_names": "Prénoms de naissance",
    "first_given_name": "Premier prénom",
    "birth_date": "Date de naissance",
    "sex": "Sexe",
    "birth_place_insee": "Code INSEE du lieu de naissance",
    "ins_matricule": "Matricule INS",
    "ins_oid": "Type de matricule INS (OID)",
    "used_family_name": "Nom utilisé",
    "used_given_name": "Prénom utilisé",
    "phone": "Téléphone",
    "email": "Adresse électronique",
    "address_line": "Adresse",
    "postal_code": "Code postal",
    "city": "Ville",
    "confirm_duplicate": "Doublon probable",
    "status": "Nouveau statut",
    "evidence": "Justificatif",
    "reason": "Motif",
    "value": "IPP",
}

ACTION_LABELS = {
    "read": "Consultation",
    "search": "Recherche",
    "create": "Création",
    "update": "Modification",
    "delete": "Suppression",
    "break_glass": "Accès d'urgence",
    "export": "Export",
}
OBJECT_LABELS = {
    "Patient": "Dossier patient",
    "AccessLog": "Journal des accès",
    "IdentityStatus": "Statut de l'identité",
    "PatientLocalIdentifier": "IPP",
    "CareRelationship": "Lien de prise en charge",
    "Consent": "Consentement",
    "BreakGlassAccess": "Revue d'accès d'urgence",
}
CHANNEL_LABELS = {"web": "Web", "api": "API", "fhir": "FHIR", "cli": "Ligne de commande"}
RELATIONSHIP_LABELS = {
    CareRelationshipKind.REGISTERED: "Patient enregistré dans l'établissement",
    CareRelationshipKind.ACT: "Acte de télésanté",
}
LABELS = {
    "ACTION_LABELS": ACTION_LABELS,
    "OBJECT_LABELS": OBJECT_LABELS,
    "CHANNEL_LABELS": CHANNEL_LABELS,
    "RELATIONSHIP_LABELS": RELATIONSHIP_LABELS,
    "INS_OIDS": INS_OIDS,
    **CONSENT_LABELS,
}


# --- form helpers -------------------------------------------------------------------------------------------


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and "hx-history-restore-request" not in request.headers


def registering_organisations(principal: Principal) -> list[tuple[uuid.UUID, str]]:
    """The organisations through which the principal registers and identifies patients (clinical roles and
    medical secretariats), by name."""
    seen: dict[uuid.UUID, str] = {}
    for grant in principal.grants:
        if (
            grant.role in CLINICAL_ROLES or grant.role in SECRETARIAT_ROLES
        ) and grant.organisation_id is not None:
            seen.setdefault(grant.organisation_id, grant.organisation_name)
    return sorted(seen.items(), key=lambda item: item[1])


def birth_place_label(code: str) -> str:
    if code.startswith("99"):
        return f"Né(e) à l'étranger (code pays {code})"
    name = communes.commune_name(code)
    return f"{name} ({code})" if name else code


async def organisation_names(session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Names of the organisations linked to one record, in one directory query."""
    wanted = {i for i in ids if i is not None}
    names = await directory_service.organisation_names(session, wanted)
    return {i: names.get(i, "Établissement inconnu") for i in wanted}


# --- search -------------------------------------------------------------------------------------------------


class PatientSearchForm(InputModel):
    """The search form's query string (French parameter names, as in the visible URL)."""

    nom: str = Field("", max_length=100)
    prenom: str = Field("", max_length=100)
    naissance: date | None = None
    sexe: Sex | None = None
    ins: str = Field("", max_length=20)
    ipp: str = Field("", max_length=50)

    def criteria(self) -> PatientCriteria:
        return PatientCriteria(
            family=self.nom,
            given=self.prenom,
            birth_date=self.naissance,
            sex=self.sexe,
            ins_matricule=self.ins.replace(" ", "").upper(),
            ipp=self.ipp,
        )


SEARCH_FIELDS = tuple(PatientSearchForm.model_fields)


@router.get("/patients")
async def search(request: Request, session: SessionDep, principal: PrincipalDep, offset: Offset = 0):
    values = {k: v.strip() for k, v in request.query_params.items() if k in SEARCH_FIELDS and v.strip()}
    partial = _is_htmx(request)
    context: dict[str, Any] = {"values": values, "page": None, "partial": partial}
    template = "patients/_results.html" if partial else "patients/search.html"
    try:
        criteria = parse_input(PatientSearchForm, values).criteria()
    except InvalidInput as exc:
        return form_error(
            request,
            template,
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=200 if partial else 422,
        )
    if not criteria.is_empty():
        context["page"] = await service.search_patients(
            session, principal, criteria, PageRequest(offset, SEARCH_PAGE_SIZE), identity=True
        )
        context["base_url"] = f"/patients?{urlencode(values)}&"
    response = render(request, template, context)
    response.headers["Vary"] = "HX-Request"
    return response


# --- registration -------------------------------------------------------------------------------------------

REGISTRATION_FIELDS = tuple(PatientCreate.model_fields)


def _registration_context(principal: Principal, values: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "organisations": registering_organisations(principal),
        "duplicates": [],
        **LABELS,
    }


@router.get("/patients/nouveau")
async def new_patient_form(request: Request, principal: PrincipalDep):
    return render(request, "patients/new.html", _registration_context(principal, {}))


@router.post("/patients/nouveau")
async def new_patient(request: Request, session: SessionDep, principal: PrincipalDep):
    values = form_values(await request.form(), REGISTRATION_FIELDS)
    context = _registration_context(principal, values)
    try:
        patient, warnings = await service.register_patient(
            session, principal, parse_input(PatientCreate, values)
        )
    except service.DuplicateSuspected as exc:
        context["duplicates"] = exc.extra.get("duplicates", [])
        return form_error(
            request, "patients/new.html", context, exc.message, exc.field, status_code=exc.status_code
        )
    except (InvalidInput, Conflict) as exc:
        return form_error(
            request,
            "patients/new.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    if service.ATTACHED_BY_INS in warnings:
        created = "ins"
    elif service.ALREADY_FOLLOWED_BY_INS in warnings:
        created = "suivi"
    else:
        created = "doublon" if warnings else "1"
    return redirect(f"/patients/{patient.id}?cree={created}")


# --- the record ---------------------------------------------------------------------------------------------


CONTACT_FIELDS = (
    "used_family_name",
    "used_given_name",
    "phone",
    "email",
    "address_line",
    "postal_code",
    "city",
)
TRAIT_FIELDS = (
    "birth_family_name",
    "birth_given_names",
    "first_given_name",
    "birth_date",
    "sex",
    "birth_place_insee",
)


def _contactform_values(patient: Patient) -> dict[str, str]:
    return {name: getattr(patient, name) or "" for name in CONTACT_FIELDS}


def _traitsform_values(patient: Patient) -> dict[str, str]:
    values = {name: str(getattr(patient, name)) for name in TRAIT_FIELDS}
    values["birth_date"] = patient.birth_date.isoformat()
    return values


CREATED_MESSAGES = {
    "1": "Patient enregistré avec une identité provisoire.",
    "doublon": "Patient enregistré avec une identité provisoire, malgré le doublon probable signalé.",
    "ins": service.ATTACHED_BY_INS,
    "suivi": service.ALREADY_FOLLOWED_BY_INS,
}
DONE_MESSAGES = {
    "statut": "Statut de l'identité mis à jour.",
    "coordonnees": "Coordonnées mises à jour.",
    "traits": "Traits d'identité corrigés : l'identité est redevenue provisoire.",
    "ipp": "IPP ajouté.",
    "consentement": "Consentement enregistré.",
    "retrait": "Consentement retiré.",
}


@router.get("/patients/{patient_id}")
async def patient_detail(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    cree: Annotated[str, Query(max_length=10)] = "",
    fait: Annotated[str, Query(max_length=20)] = "",
):
    access = await service.get_patient_identity(session, principal, patient_id)  # audited read, first
    patient = access.patient
    history = await service.list_status_changes(session, principal, patient_id)
    relationships = await service.list_care_relationships(session, principal, patient_id)
    # A medical secretariat sees the identity and the agenda, not the consents nor who read the record.
    consents = await consents_service.list_consents(session, principal, patient_id) if access.clinical else []
    log = (
        await service.access_log(session, principal, patient_id, PageRequest(0, LOG_PREVIEW_SIZE))
        if access.clinical
        else None
    )
    names = await organisation_names(
        session,
        [r.organisation_id for r in relationships]
        + [i.organisation_id for i in patient.local_identifiers]
        + [c.organisation_id for c in consents],
    )
    gp = (
        await directory_service.get_professional(session, patient.gp_professional_id)
        if patient.gp_professional_id
        else None
    )
    own = registering_organisations(principal)
    context = {
        "patient": patient,
        "patient_id": patient.id,
        "via_break_glass": access.via_break_glass,
        "clinical": access.clinical,
        "birth_place": birth_place_label(patient.birth_place_insee),
        "history": history,
        "relationships": relationships,
        "consents": consents,
        "log": log,
        "organisation_names": names,
        "gp": gp,
        "organisations": own,
        "status_values": {},
        "contact_values": _contactform_values(patient),
        "ipp_values": {"organisation_id": str(own[0][0])} if len(own) == 1 else {},
        "message": CREATED_MESSAGES.get(cree) or DONE_MESSAGES.get(fait),
        **LABELS,
    }
    return render(request, "patients/detail.html", context)


@router.get("/patients/{patient_id}/acces")
async def patient_access_log(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, offset: Offset = 0
):
    access = await service.get_patient(session, principal, patient_id)
    log = await service.access_log(session, principal, patient_id, PageRequest(offset, LOG_PAGE_SIZE))
    context = {"patient": access.patient, "via_break_glass": access.via_break_glass, "log": log, **LABELS}
    return render(request, "patients/access_log.html", context)


# --- the record's forms: each has its own page (GET shows it, POST re-renders it with the error) -----------


@dataclass(frozen=True)
class RecordForm:
    template: str
    title: str
    values_key: str  # name of the values dict the form template reads (the record page shows several)


FORMS = {
    "statut": RecordForm("patients/_status_form.html", "Changer le statut de l'identité", "status_values"),
    "coordonnees": RecordForm("patients/_contact_form.html", "Modifier les coordonnées", "contact_values"),
    "traits": RecordForm("patients/_traits_form.html", "Corriger les traits d'identité", "traits_values"),
    "ipp": RecordForm("patients/_ipp_form.html", "Ajouter un identifiant local (IPP)", "ipp_values"),
}


def _form_context(
    principal: Principal,
    kind: str,
    patient_id: uuid.UUID,
    values: dict[str, str],
    patient: Patient | None = None,
    via_break_glass: bool = False,
) -> dict[str, Any]:
    form = FORMS[kind]
    own = registering_organisations(principal)
    if kind == "ipp" and len(own) == 1:
        values = {"organisation_id": str(own[0][0]), **values}
    return {
        "form_template": form.template,
        "title": form.title,
        "patient_id": patient_id,
        "patient": patient,  # None when re-rendered after an error: nothing read, nothing shown
        "via_break_glass": via_break_glass,
        "organisations": own,
        form.values_key: values,
        **LABELS,
    }


async def _show_form(request: Request, session, principal: Principal, kind: str, patient_id: uuid.UUID):
    access = await service.get_patient_identity(session, principal, patient_id)
    values: dict[str, str] = {}
    if kind == "coordonnees":
        values = _contactform_values(access.patient)
    elif kind == "traits":
        values = _traitsform_values(access.patient)
    context = _form_context(principal, kind, patient_id, values, access.patient, access.via_break_glass)
    return render(request, "patients/form_page.html", context)


def _form_failed(
    request: Request, principal: Principal, kind: str, patient_id: uuid.UUID, values, exc: DomainError
):
    context = _form_context(principal, kind, patient_id, values)
    return form_error(
        request,
        "patients/form_page.html",
        context,
        labelled_message(exc, FIELD_LABELS),
        exc.field,
        status_code=exc.status_code,
    )


@router.get("/patients/{patient_id}/statut")
async def status_form(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await _show_form(request, session, principal, "statut", patient_id)


@router.post("/patients/{patient_id}/statut")
async def change_status(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID
):
    values = form_values(await request.form(), IdentityStatusChangeCreate.model_fields)
    try:
        data = parse_input(IdentityStatusChangeCreate, values)
        await service.change_identity_status(session, principal, patient_id, data)
    except (InvalidInput, Conflict) as exc:
        return _form_failed(request, principal, "statut", patient_id, values, exc)
    return redirect(f"/patients/{patient_id}?fait=statut#identite")


@router.get("/patients/{patient_id}/coordonnees")
async def contact_form(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await _show_form(request, session, principal, "coordonnees", patient_id)


@router.post("/patients/{patient_id}/coordonnees")
async def update_contact(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID
):
    form = await request.form()
    # Every field is sent, empty ones included, so that a field can be cleared.
    values = {name: str(form.get(name) or "").strip() for name in CONTACT_FIELDS}
    try:
        data = parse_input(PatientUpdate, {**values, "email": values["email"] or None})
        await service.update_patient(session, principal, patient_id, data)
    except (InvalidInput, Conflict) as exc:
        return _form_failed(request, principal, "coordonnees", patient_id, values, exc)
    return redirect(f"/patients/{patient_id}?fait=coordonnees#coordonnees")


@router.get("/patients/{patient_id}/traits")
async def traits_form(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await _show_form(request, session, principal, "traits", patient_id)


@router.post("/patients/{patient_id}/traits")
async def correct_traits(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID
):
    values = form_values(await request.form(), TraitsCorrection.model_fields)
    try:
        await service.correct_traits(session, principal, patient_id, parse_input(TraitsCorrection, values))
    except (InvalidInput, Conflict) as exc:
        return _form_failed(request, principal, "traits", patient_id, values, exc)
    return redirect(f"/patients/{patient_id}?fait=traits#identite")


@router.get("/patients/{patient_id}/ipp")
async def ipp_form(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await _show_form(request, session, principal, "ipp", patient_id)


@router.post("/patients/{patient_id}/ipp")
async def add_ipp(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    values = form_values(await request.form(), LocalIdentifierCreate.model_fields)
    try:
        await service.add_local_identifier(
            session, principal, patient_id, parse_input(LocalIdentifierCreate, values)
        )
    except (InvalidInput, Conflict) as exc:
        return _form_failed(request, principal, "ipp", patient_id, values, exc)
    return redirect(f"/patients/{patient_id}?fait=ipp#identifiants")
