"""Patient identity rules (INS, RNIV statuses), care relationships, emergency access and access log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.models import AuditEvent
from telesante.audit.service import Action, list_patient_events, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.directory.models import Profession
from telesante.directory.repository import OrganisationRepository, ProfessionalRepository
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.text import fold
from telesante.patients.models import (
    HIGH_TRUST_EVIDENCE,
    MINOR_ONLY_EVIDENCE,
    BreakGlassAccess,
    CareRelationship,
    CareRelationshipKind,
    IdentityEvidence,
    IdentityStatus,
    IdentityStatusChange,
    Patient,
    PatientLocalIdentifier,
    Sex,
)
from telesante.patients.repository import BreakGlassRepository, PatientCriteria, PatientRepository
from telesante.patients.schemas import (
    BreakGlassCreate,
    IdentityStatusChangeCreate,
    LocalIdentifierCreate,
    PatientCreate,
    PatientTraits,
    PatientUpdate,
    TraitsCorrection,
    ins_name,
)

STRICT_TRAITS = (
    "birth_family_name",
    "birth_given_names",
    "first_given_name",
    "birth_date",
    "sex",
    "birth_place_insee",
)


class DuplicateSuspected(Conflict):
    code = "doublon-probable"
    title = "Doublon probable"


class InsTraitsMismatch(Conflict):
    code = "ins-traits-divergents"
    title = "Traits d'identité divergents"


# Warnings of a registration that found its matricule INS already on the platform (the routes answer 200, not 201).
ATTACHED_BY_INS = "Identité existante rattachée à votre établissement (INS)."
ALREADY_FOLLOWED_BY_INS = "Ce patient (INS) est déjà suivi dans votre établissement."
EXISTING_IDENTITY_WARNINGS = frozenset({ATTACHED_BY_INS, ALREADY_FOLLOWED_BY_INS})
# The INS referential's birth place when unknown (also used for a provisional identity registered in a hurry).
UNKNOWN_BIRTH_PLACE = "99999"


@dataclass
class PatientAccess:
    patient: Patient
    via_break_glass: bool
    clinical: bool = True  # False: seen through a medical secretariat only (identity and agenda)


def _sync_search_keys(patient: Patient) -> None:
    patient.search_birth_family = fold(patient.birth_family_name)
    patient.search_used_family = fold(patient.used_family_name) or patient.search_birth_family
    patient.search_given = fold(patient.birth_given_names)


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# --- access ---------------------------------------------------------------------------------------------


async def require_patient_access(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, *, identity: bool = False
) -> PatientAccess:
    """The one gate to a patient: 404 (not 403) when outside the principal's scope, so ids reveal nothing.

    Clinical by default: a care relationship with one of the principal's clinical organisations, or an emergency
    grant. ``identity``: the patient's identity and agenda only, which a medical secretariat of a following
    organisation may also reach (``PatientAccess.clinical`` then says whether the clinical gate would open too)."""
    found = await PatientRepository(session).get_visible(principal, patient_id, identity)
    if found is None:
        raise NotFound("Patient introuvable.")
    patient, via_break_glass, clinical = found
    return PatientAccess(patient, via_break_glass, clinical)


async def visible_names(
    session: AsyncSession, principal: Principal, patient_ids: list[uuid.UUID], *, identity: bool = False
) -> dict[uuid.UUID, str]:
    """Names for a list (agenda, worklist): only patients within the principal's scope (``identity``: also through
    a medical secretariat); the caller audits the list."""
    return await PatientRepository(session).visible_names(principal, patient_ids, identity)


async def read_patient_data(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    object_type: str,
    details: dict | None = None,
    *,
    identity: bool = False,
    checked: PatientAccess | None = None,
) -> PatientAccess:
    """The gate plus its audit row, for every read of a part of a patient's record. ``checked``: what the gate
    answered this principal for this patient earlier in the same transaction (it is not asked again)."""
    if checked is not None and checked.patient.id == patient_id and (identity or checked.clinical):
        access = checked
    else:
        access = await require_patient_access(session, principal, patient_id, identity=identity)
    await record_access(
        session,
        principal,
        action=Action.READ,
        object_type=object_type,
        object_id=patient_id,
        patient_id=patient_id,
        break_glass=access.via_break_glass,
        details=details,
    )
    return access


async def get_patient(session: AsyncSession, principal: Principal, patient_id: uuid.UUID) -> PatientAccess:
    """The patient, for a clinical use (the gate every clinical domain uses)."""
    return await read_patient_data(session, principal, patient_id, "Patient")


async def get_patient_identity(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> PatientAccess:
    """The identity record, which a medical secretariat reaches too (``clinical`` says whether the clinical gate
    would open as well): the patient pages and the booking of appointments."""
    return await read_patient_data(session, principal, patient_id, "Patient", identity=True)


async def search_patients(
    session: AsyncSession,
    principal: Principal,
    criteria: PatientCriteria,
    page: PageRequest,
    *,
    identity: bool = False,
) -> Page[Patient]:
    """Scoped search. Each patient shown in the results gets its own audit row, so that the search appears in
    that patient's access log; a search that finds nobody is recorded once with its criteria."""
    result = await PatientRepository(session).search_visible(principal, criteria, page, identity=identity)
    searched = {k: str(v) for k, v in criteria.__dict__.items() if v}
    for patient in result.items or [None]:
        await record_access(
            session,
            principal,
            action=Action.SEARCH,
            object_type="Patient",
            object_id=patient.id if patient else "",
            patient_id=patient.id if patient else None,
            details={"criteria": searched},
        )
    return result


# --- registration ---------------------------------------------------------------------------------------


def _registration_organisation(principal: Principal, organisation_id: uuid.UUID | None) -> uuid.UUID:
    allowed = principal.identity_organisation_ids  # a clinician, or the medical secretariat (admission)
    if not allowed:
        raise Forbidden(
            "Seul un professionnel de santé ou un secrétariat médical rattaché à un établissement peut "
            "enregistrer un patient."
        )
    if organisation_id is None:
        if len(allowed) > 1:
            raise InvalidInput("Précisez l'établissement d'enregistrement.", field="organisation_id")
        return next(iter(allowed))
    if organisation_id not in allowed:
        raise InvalidInput("Vous n'exercez pas dans cet établissement.", field="organisation_id")
    return organisation_id


async def probable_duplicates(
    session: AsyncSession, principal: Principal, family: str, first_given: str, birth_date: date
) -> list[tuple[uuid.UUID | None, str]]:
    """Identity-vigilance check. Patients outside the principal's scope are announced without their id."""
    repo = PatientRepository(session)
    same = await repo.find_same_traits(fold(family), fold(first_given), birth_date)
    visible = await repo.visible_ids(principal, [p.id for p in same])
    return [
        (p.id, p.display_name)
        if p.id in visible
        else (None, "Patient enregistré dans un autre établissement")
        for p in same
    ]


async def register_patient(
    session: AsyncSession, principal: Principal, data: PatientCreate
) -> tuple[Patient, list[str]]:
    organisation_id = _registration_organisation(principal, data.organisation_id)
    repo = PatientRepository(session)
    warnings: list[str] = []
    if data.ins_matricule:
        existing = await repo.get_by_ins(data.ins_matricule)
        if existing is not None:
            return await _attach_by_ins(session, principal, organisation_id, existing, data)
    duplicates = await probable_duplicates(
        session, principal, data.birth_family_name, data.first_given_name or "", data.birth_date
    )
    if duplicates:
        if not data.confirm_duplicate:
            raise DuplicateSuspected(
                f"{len(duplicates)} patient(s) aux traits identiques existe(nt) déjà (nom, premier prénom, date de "
                "naissance). Vérifiez avant de créer ; cochez « créer malgré le doublon » si c'est une autre personne.",
                field="confirm_duplicate",
                extra={"duplicates": [{"id": str(i) if i else None, "display": d} for i, d in duplicates]},
            )
        warnings.append(f"Création confirmée malgré {len(duplicates)} doublon(s) probable(s).")
    if data.ipp and await repo.get_local_identifier(organisation_id, data.ipp):
        raise Conflict("Cet IPP est déjà attribué dans cet établissement.", field="ipp")
    if data.gp_professional_id is not None:
        await _check_gp(session, data.gp_professional_id)

    values = data.model_dump(exclude={"organisation_id", "ipp", "confirm_duplicate", "email"})
    patient = Patient(**values, email=str(data.email or ""), created_by_account_id=principal.account_id)
    _sync_search_keys(patient)
    patient.identity_status = IdentityStatus.PROVISOIRE
    await repo.add(patient)
    await repo.add_status_change(
        IdentityStatusChange(
            patient_id=patient.id,
            from_status=None,
            to_status=IdentityStatus.PROVISOIRE,
            evidence=IdentityEvidence.AUCUN,
            reason="Création de l'identité",
            changed_by_account_id=principal.account_id,
            changed_by_name=principal.display_name[:200],
        )
    )
    await repo.add_care_relationship(patient.id, organisation_id, CareRelationshipKind.REGISTERED)
    if data.ipp:
        await repo.add_local_identifier(
            PatientLocalIdentifier(patient_id=patient.id, organisation_id=organisation_id, value=data.ipp)
        )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="Patient",
        object_id=patient.id,
        patient_id=patient.id,
        details={"organisation_id": str(organisation_id), "confirmed_duplicate": bool(duplicates)},
    )
    return patient, warnings


def _agreeing_traits(patient: Patient, data: PatientTraits) -> list[str] | None:
    """The strict traits compared between what the user typed and the stored identity, if they all agree;
    None as soon as one differs. Names folded (accents, case, hyphens, apostrophes), the full list of given
    names as well as the first one; birth date and sex exact; birth place only when both are known."""
    compared = {
        "birth_family_name": fold(data.birth_family_name) == fold(patient.birth_family_name),
        "birth_given_names": fold(data.birth_given_names) == fold(patient.birth_given_names),
        "first_given_name": fold(data.first_given_name) == fold(patient.first_given_name),
        "birth_date": data.birth_date == patient.birth_date,
        "sex": data.sex == patient.sex,
    }
    places = (data.birth_place_insee.upper(), patient.birth_place_insee.upper())
    if all(place and place != UNKNOWN_BIRTH_PLACE for place in places):
        compared["birth_place_insee"] = places[0] == places[1]
    return sorted(compared) if all(compared.values()) else None


async def _attach_by_ins(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    patient: Patient,
    data: PatientCreate,
) -> tuple[Patient, list[str]]:
    """Registration of a matricule INS the platform already holds: the identity is regional and shared (RNIV),
    so the registering organisation is linked to it — if the traits typed agree with the stored ones. When
    they do not, nothing is written and the message says so without revealing the stored traits."""
    matched = _agreeing_traits(patient, data)
    if matched is None:
        raise InsTraitsMismatch(
            "Ce matricule INS appartient à un patient de la plateforme dont les traits d'identité diffèrent de "
            "ceux saisis. Vérifiez la saisie et contactez la cellule d'identitovigilance de votre établissement.",
            field="ins_matricule",
        )
    repo = PatientRepository(session)
    # Every check before the first write.
    own_ipp = await repo.get_local_identifier_for(patient.id, organisation_id)
    if data.ipp:
        taken = await repo.get_local_identifier(organisation_id, data.ipp)
        if taken is not None and taken.patient_id != patient.id:
            raise Conflict("Cet IPP est déjà attribué dans cet établissement.", field="ipp")
        if own_ipp is not None and own_ipp.value != data.ipp:
            raise Conflict("Ce patient a déjà un IPP dans cet établissement.", field="ipp")
    relationships = await repo.list_care_relationships(patient.id)
    already_followed = any(r.organisation_id == organisation_id for r in relationships)
    relation = None
    if not already_followed:
        relation = await repo.add_care_relationship(
            patient.id, organisation_id, CareRelationshipKind.REGISTERED
        )
    ipp_added = False
    if data.ipp and own_ipp is None:
        ipp_added = True
        await repo.add_local_identifier(
            PatientLocalIdentifier(patient_id=patient.id, organisation_id=organisation_id, value=data.ipp)
        )
    await record_access(
        session,
        principal,
        action=Action.READ if relation is None else Action.CREATE,
        object_type="Patient" if relation is None else "CareRelationship",
        object_id=patient.id if relation is None else relation.id,
        patient_id=patient.id,
        details={
            "organisation_id": str(organisation_id),
            "attached_by": "ins",
            "matched_traits": matched,
            "already_followed": already_followed,
            "ipp_added": ipp_added,
        },
    )
    return patient, [ALREADY_FOLLOWED_BY_INS if already_followed else ATTACHED_BY_INS]


async def _check_gp(session: AsyncSession, professional_id: uuid.UUID) -> None:
    gp = await ProfessionalRepository(session).get(professional_id)
    if gp is None or gp.profession != Profession.MEDECIN:
        raise InvalidInput(
            "Le médecin traitant doit être un médecin de l'annuaire.", field="gp_professional_id"
        )


async def update_patient(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: PatientUpdate
) -> Patient:
    access = await require_patient_access(session, principal, patient_id, identity=True)
    patient = access.patient
    changes = data.model_dump(exclude_unset=True)
    if changes.get("gp_professional_id") is not None:
        await _check_gp(session, changes["gp_professional_id"])
    if "email" in changes:
        changes["email"] = str(changes["email"] or "")
    for key, value in changes.items():
        setattr(patient, key, value)
    _sync_search_keys(patient)
    await PatientRepository(session).refresh_care_search_keys(patient)
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Patient",
        object_id=patient.id,
        patient_id=patient.id,
        details={"fields": sorted(changes)},
        break_glass=access.via_break_glass,
    )
    return patient


async def correct_traits(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: TraitsCorrection
) -> Patient:
    """Changing a strict trait invalidates any verification: the identity goes back to provisoire (RNIV)."""
    access = await require_patient_access(session, principal, patient_id, identity=True)
    patient = access.patient
    new = data.model_dump(include=set(STRICT_TRAITS))
    changed = sorted(k for k, v in new.items() if getattr(patient, k) != v)
    if not changed:
        raise InvalidInput("Aucun trait d'identité n'a été modifié.")
    if patient.ins_matricule:
        from telesante.kit.identifiers import check_nir_against_traits

        problem = check_nir_against_traits(patient.ins_matricule, data.sex, data.birth_date)
        if problem:
            raise InvalidInput(problem, field="sex" if "sexe" in problem else "birth_date")
    for key, value in new.items():
        setattr(patient, key, value)
    _sync_search_keys(patient)
    await PatientRepository(session).refresh_care_search_keys(patient)
    if patient.identity_status != IdentityStatus.PROVISOIRE:
        await PatientRepository(session).add_status_change(
            IdentityStatusChange(
                patient_id=patient.id,
                from_status=patient.identity_status,
                to_status=IdentityStatus.PROVISOIRE,
                evidence=IdentityEvidence.AUCUN,
                reason=f"Traits modifiés ({', '.join(changed)}) : {data.reason}"[:500],
                changed_by_account_id=principal.account_id,
                changed_by_name=principal.display_name[:200],
            )
        )
        patient.identity_status = IdentityStatus.PROVISOIRE
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Patient",
        object_id=patient.id,
        patient_id=patient.id,
        details={"traits": changed, "reason": data.reason},
        break_glass=access.via_break_glass,
    )
    return patient


def _check_transition(patient: Patient, data: IdentityStatusChangeCreate, ins_matricule: str | None) -> None:
    target, evidence, current = data.status, data.evidence, patient.identity_status
    if target == current:
        raise InvalidInput("L'identité a déjà ce statut.", field="status")
    if (
        evidence in MINOR_ONLY_EVIDENCE
        and age_on(patient.birth_date, clock.to_paris(clock.now()).date()) >= 18
    ):
        raise InvalidInput(
            "Le livret de famille ou l'extrait d'acte de naissance ne valent que pour un mineur.",
            field="evidence",
        )
    if target == IdentityStatus.PROVISOIRE:
        return
    if target in (IdentityStatus.RECUPEREE, IdentityStatus.QUALIFIEE) and patient.sex == Sex.I:
        raise InvalidInput("Le téléservice INSi ne renvoie que les sexes M ou F.", field="status")
    if target == IdentityStatus.RECUPEREE:
        if evidence != IdentityEvidence.TELESERVICE_INSI or not ins_matricule:
            raise InvalidInput(
                "Une identité récupérée suppose l'appel au téléservice INSi et le matricule INS obtenu.",
                field="evidence",
            )
        if current in (IdentityStatus.VALIDEE, IdentityStatus.QUALIFIEE):
            raise InvalidInput(
                "Une identité validée devient qualifiée (et non récupérée) après l'appel INSi.",
                field="status",
            )
    elif target == IdentityStatus.VALIDEE:
        if evidence not in HIGH_TRUST_EVIDENCE:
            raise InvalidInput(
                "La validation exige un justificatif d'identité à haut niveau de confiance.", field="evidence"
            )
        if current in (IdentityStatus.RECUPEREE, IdentityStatus.QUALIFIEE):
            raise InvalidInput(
                "Une identité récupérée devient qualifiée (et non validée) après contrôle du justificatif.",
                field="status",
            )
    elif target == IdentityStatus.QUALIFIEE:
        if not ins_matricule:
            raise InvalidInput(
                "Une identité qualifiée suppose un matricule INS récupéré par INSi.", field="ins_matricule"
            )
        if current == IdentityStatus.RECUPEREE and evidence not in HIGH_TRUST_EVIDENCE:
            raise InvalidInput(
                "Contrôlez un justificatif à haut niveau de confiance pour qualifier l'identité.",
                field="evidence",
            )
        if current == IdentityStatus.VALIDEE and evidence != IdentityEvidence.TELESERVICE_INSI:
            raise InvalidInput(
                "Appelez le téléservice INSi pour qualifier une identité validée.", field="evidence"
            )
        if current == IdentityStatus.PROVISOIRE:
            raise InvalidInput(
                "Une identité provisoire est d'abord récupérée (INSi) ou validée (justificatif), puis qualifiée.",
                field="status",
            )


async def change_identity_status(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: IdentityStatusChangeCreate
) -> Patient:
    access = await require_patient_access(session, principal, patient_id, identity=True)
    patient = access.patient
    repo = PatientRepository(session)
    ins_matricule = data.ins_matricule or patient.ins_matricule
    if data.ins_matricule and data.ins_matricule != patient.ins_matricule:
        from telesante.kit.identifiers import INS_OIDS, OID_INS_NIR, check_nir_against_traits

        problem = check_nir_against_traits(data.ins_matricule, patient.sex, patient.birth_date)
        if problem:
            raise InvalidInput(problem, field="ins_matricule")
        other = await repo.get_by_ins(data.ins_matricule)
        if other is not None and other.id != patient.id:
            raise Conflict("Ce matricule INS est déjà attribué à un autre patient.", field="ins_matricule")
        oid = data.ins_oid or OID_INS_NIR
        if oid not in INS_OIDS:
            raise InvalidInput("OID du matricule INS inconnu.", field="ins_oid")
    _check_transition(patient, data, ins_matricule)
    if data.ins_matricule and data.ins_matricule != patient.ins_matricule:
        patient.ins_matricule = data.ins_matricule
        patient.ins_oid = data.ins_oid or OID_INS_NIR
    await repo.add_status_change(
        IdentityStatusChange(
            patient_id=patient.id,
            from_status=patient.identity_status,
            to_status=data.status,
            evidence=data.evidence,
            reason=data.reason,
            changed_by_account_id=principal.account_id,
            changed_by_name=principal.display_name[:200],
        )
    )
    patient.identity_status = data.status
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="IdentityStatus",
        object_id=patient.id,
        patient_id=patient.id,
        details={"to": data.status.value, "evidence": data.evidence.value},
        break_glass=access.via_break_glass,
    )
    return patient


async def list_status_changes(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> list[IdentityStatusChange]:
    await read_patient_data(session, principal, patient_id, "IdentityStatusHistory", identity=True)
    return await PatientRepository(session).list_status_changes(patient_id)


async def add_local_identifier(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: LocalIdentifierCreate
) -> PatientLocalIdentifier:
    access = await require_patient_access(session, principal, patient_id, identity=True)
    if access.via_break_glass:
        raise Forbidden("Un accès d'urgence ne permet pas d'enregistrer le patient dans votre établissement.")
    if data.organisation_id not in principal.identity_organisation_ids:
        raise InvalidInput(
            "Vous ne pouvez attribuer un IPP que dans votre établissement.", field="organisation_id"
        )
    repo = PatientRepository(session)
    if await repo.get_local_identifier(data.organisation_id, data.value):
        raise Conflict("Cet IPP est déjà attribué dans cet établissement.", field="value")
    if await repo.get_local_identifier_for(patient_id, data.organisation_id):
        raise Conflict("Ce patient a déjà un IPP dans cet établissement.", field="organisation_id")
    identifier = await repo.add_local_identifier(
        PatientLocalIdentifier(patient_id=patient_id, organisation_id=data.organisation_id, value=data.value)
    )
    await repo.add_care_relationship(patient_id, data.organisation_id, CareRelationshipKind.REGISTERED)
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="PatientLocalIdentifier",
        object_id=identifier.id,
        patient_id=patient_id,
        break_glass=access.via_break_glass,
    )
    return identifier


async def link_patient_to_organisation(
    session: AsyncSession,
    principal: Principal | None,
    patient_id: uuid.UUID,
    organisation_id: uuid.UUID,
    source_ref: str,
    *,
    fresh: bool = False,
) -> CareRelationship:
    """Called by acts (requests, consultations...) so that every organisation involved can see the patient.
    ``fresh``: the act was created by this transaction, so the relationship it gives cannot exist yet, and its
    organisation is the act's own (a foreign key already guarantees it)."""
    if not fresh and await OrganisationRepository(session).get(organisation_id) is None:
        raise InvalidInput("Établissement inconnu.", field="organisation_id")
    relation = await PatientRepository(session).add_care_relationship(
        patient_id, organisation_id, CareRelationshipKind.ACT, source_ref, new=fresh
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="CareRelationship",
        object_id=relation.id,
        patient_id=patient_id,
        details={"organisation_id": str(organisation_id), "source": source_ref},
    )
    return relation


async def list_care_relationships(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> list[CareRelationship]:
    await read_patient_data(session, principal, patient_id, "CareRelationships", identity=True)
    return await PatientRepository(session).list_care_relationships(patient_id)


# --- break the glass ------------------------------------------------------------------------------------


async def break_glass(
    session: AsyncSession, principal: Principal, settings: Settings, data: BreakGlassCreate
) -> list[BreakGlassAccess]:
    """Emergency access to a patient outside any care relationship: exact identification, mandatory reason,
    limited duration, every use flagged in the audit trail and listed for review by an administrator."""
    if not principal.is_clinician:
        raise Forbidden("L'accès d'urgence est réservé aux professionnels de santé.")
    repo = BreakGlassRepository(session)
    candidates = await repo.find_candidates(
        ins_matricule=data.ins_matricule,
        folded_family=fold(ins_name(data.birth_family_name or "")),
        folded_first_given=fold(ins_name(data.first_given_name or "")),
        birth_date=data.birth_date,
    )
    if not candidates:
        raise NotFound("Aucun patient ne correspond exactement à cette identification.")
    if len(candidates) > 1:
        raise InvalidInput(
            f"{len(candidates)} patients correspondent : identifiez le patient par son matricule INS.",
            field="ins_matricule",
        )
    now = clock.now()
    grants = []
    for patient in candidates:
        grant = await repo.add(
            BreakGlassAccess(
                account_id=principal.account_id,
                patient_id=patient.id,
                reason=data.reason,
                granted_at=now,
                expires_at=now + timedelta(hours=settings.break_glass_hours),
            )
        )
        await record_access(
            session,
            principal,
            action=Action.BREAK_GLASS,
            object_type="Patient",
            object_id=patient.id,
            patient_id=patient.id,
            break_glass=True,
            details={"reason": data.reason, "grant": str(grant.id)},
        )
        grants.append(grant)
    return grants


async def list_pending_break_glass(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> Page[BreakGlassAccess]:
    if not principal.is_regional_admin:
        raise Forbidden("La revue des accès d'urgence est réservée à l'administrateur régional.")
    return await BreakGlassRepository(session).list_pending(page)


async def review_break_glass(
    session: AsyncSession, principal: Principal, grant_id: uuid.UUID, comment: str
) -> BreakGlassAccess:
    if not principal.is_regional_admin:
        raise Forbidden("La revue des accès d'urgence est réservée à l'administrateur régional.")
    grant = await BreakGlassRepository(session).get(grant_id)
    if grant is None:
        raise NotFound("Accès d'urgence introuvable.")
    if grant.reviewed_at is not None:
        raise Conflict("Cet accès d'urgence a déjà été revu.")
    grant.reviewed_at = clock.now()
    grant.reviewed_by_account_id = principal.account_id
    grant.review_comment = comment.strip()
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="BreakGlassAccess",
        object_id=grant.id,
        patient_id=grant.patient_id,
        details={"review": grant.review_comment},
    )
    return grant


# --- access log -----------------------------------------------------------------------------------------


async def access_log(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, page: PageRequest
) -> Page[AuditEvent]:
    """Who accessed the record. Reading the log is itself traced (before listing, so it appears in it)."""
    await read_patient_data(session, principal, patient_id, "AccessLog")
    return await list_patient_events(session, patient_id, page)


async def identity_status_overview(session: AsyncSession, principal: Principal) -> dict[str, int]:
    """Number of identities per RNIV status, region-wide (identity-vigilance indicator, no patient data)."""
    from telesante.directory.models import Role
    from telesante.patients.repository import PatientStatisticsRepository

    if not principal.has_role(Role.EVALUATOR, Role.REGIONAL_ADMIN):
        raise Forbidden("Réservé aux évaluateurs et à l'administrateur régional.")
    counts = await PatientStatisticsRepository(session).count_by_identity_status()
    return {status.value: counts.get(status.value, 0) for status in IdentityStatus}
