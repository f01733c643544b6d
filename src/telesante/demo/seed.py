"""Seed the fictional demo region through the real services (``telesante demo seed``).

Idempotent: every entity is looked up by its natural key first (FINESS, service name, RPPS, e-mail,
membership, patient traits) and only what is missing is created, so a second run changes nothing.
Deterministic: synthetic patients come from ``random.Random(SEED)``, generated before any database access.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth import service as auth_service
from telesante.auth.principal import Principal
from telesante.auth.repository import AccountRepository
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentDecision, ConsentGiver, ConsentMethod, ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.consents.service import is_minor
from telesante.demo import names
from telesante.demo.region import (
    IPP_PREFIXES,
    ORGANISATIONS,
    PATIENTS_BY_REGISTRANT,
    PEOPLE,
    REGION_NAME,
    OrganisationSpec,
    PersonSpec,
)
from telesante.directory import service as directory_service
from telesante.directory.models import ROLE_LABELS, OrganisationType
from telesante.directory.repository import (
    MembershipRepository,
    OrganisationRepository,
    ProfessionalRepository,
    ServiceRepository,
)
from telesante.directory.schemas import (
    MembershipCreate,
    OrganisationCreate,
    ProfessionalCreate,
    ServiceCreate,
)
from telesante.kit import clock, identifiers
from telesante.patients import service as patient_service
from telesante.patients.models import IdentityEvidence, IdentityStatus
from telesante.patients.schemas import IdentityStatusChangeCreate, PatientCreate

# Shared by every demo account (documented in README.md). Never use outside demo mode.
DEMO_PASSWORD = "Telesante-demo-2026"  # noqa: S105 - public demo credential
# Base32 TOTP secret of the demo administrators (RFC 6238, 6 digits, 30 s): enter it in an authenticator app,
# or print the current code with: python -c "import pyotp; print(pyotp.TOTP('<secret>').now())".
DEMO_TOTP_SECRET = "KRSWYZLTMFXHIZJAMRSW23ZAGIYDENRB"  # noqa: S105 - public demo credential
SEED = 2026


SUMMARY_LABELS = {
    "organisations": "Établissements",
    "services": "Services",
    "professionals": "Professionnels",
    "memberships": "Rattachements",
    "accounts": "Comptes",
    "patients": "Patients",
    IdentityStatus.RECUPEREE.value: "  dont identités passées à « récupérée »",
    IdentityStatus.VALIDEE.value: "  dont identités passées à « validée »",
    IdentityStatus.QUALIFIEE.value: "  dont identités passées à « qualifiée »",
    "care_links": "  dont liens de soins avec le CHU",
    "consents": "  dont consentements recueillis",
    "rotas": "Listes de garde",
    "shifts": "  dont gardes planifiées",
    "offers": "Offres de télé-expertise",
    "sites": "Lieux de téléconsultation",
    "slots": "Créneaux de téléconsultation ouverts",
    "émetteurs DICOM": "Émetteurs DICOM",
    "études d'imagerie": "Études d'imagerie (scanner cérébral)",
    "monitoring": "Patients en télésurveillance (insuffisance cardiaque)",
}


@dataclass
class SeedSummary:
    created: Counter = field(default_factory=Counter)
    existing: Counter = field(default_factory=Counter)
    # (email, roles, organisations, TOTP) of every demo account, for the printed summary.
    accounts: list[tuple[str, str, str, bool]] = field(default_factory=list)


# --- synthetic patients (pure: no database) ----------------------------------------------------------------


@dataclass(frozen=True)
class PatientPlan:
    registrant: str
    data: PatientCreate
    nir: str
    status_path: StatusPath
    link_to_chu: bool
    consent: tuple[ConsentScopeType, str, ConsentDecision, ConsentMethod] | None


def _nir(sex: str, birth: date, place: str, order: int) -> str:
    body = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{place}{order:03d}"
    return body + identifiers.nir_key(body)


StatusPath = tuple[tuple[IdentityStatus, IdentityEvidence], ...]


def _status_path(rng: random.Random, born_abroad: bool) -> StatusPath:
    """RNIV: récupérée (INSi), validée (high-trust document), qualifiée (both, in either order)."""
    document = (
        IdentityEvidence.TITRE_SEJOUR
        if born_abroad
        else rng.choice((IdentityEvidence.CNI, IdentityEvidence.CNI, IdentityEvidence.PASSEPORT))
    )
    insi = IdentityEvidence.TELESERVICE_INSI
    draw = rng.random()
    if draw < 0.35:
        return ()
    if draw < 0.60:
        return ((IdentityStatus.RECUPEREE, insi),)
    if draw < 0.75:
        return ((IdentityStatus.VALIDEE, document),)
    if draw < 0.90:
        return ((IdentityStatus.RECUPEREE, insi), (IdentityStatus.QUALIFIEE, document))
    return ((IdentityStatus.VALIDEE, document), (IdentityStatus.QUALIFIEE, insi))


def _consent_for(rng: random.Random, organisation_type: OrganisationType, registrant: str, linked: bool):
    if linked:
        return (ConsentScopeType.ACT, "teleexpertise", ConsentDecision.GIVEN, ConsentMethod.ORAL)
    if registrant == "telesurveillance":
        return (ConsentScopeType.ACT, "telesurveillance", ConsentDecision.GIVEN, ConsentMethod.WRITTEN)
    if organisation_type in (OrganisationType.PHARMACIE, OrganisationType.MSP) and rng.random() < 0.6:
        decision = ConsentDecision.REFUSED if rng.random() < 0.15 else ConsentDecision.GIVEN
        return (ConsentScopeType.ACT, "teleconsultation", decision, ConsentMethod.ORAL)
    if rng.random() < 0.05:
        return (ConsentScopeType.DATA_PROCESSING, "recherche", ConsentDecision.REFUSED, ConsentMethod.WRITTEN)
    return None


def plan_patients(seed: int = SEED) -> list[PatientPlan]:
    """The synthetic patients, always the same for a given seed (about 200, spread over the region)."""
    rng = random.Random(seed)
    organisation_of = {p.key: p.grants[0].organisation for p in PEOPLE}
    type_of = {o.key: o.type for o in ORGANISATIONS}
    seen_traits: set[tuple[str, str, date]] = set()
    seen_nir: set[str] = set()
    ipp_counters: Counter = Counter()
    plans: list[PatientPlan] = []
    for registrant, count in PATIENTS_BY_REGISTRANT:
        org_key = organisation_of[registrant]
        org_type = type_of[org_key]
        for _ in range(count):
            sex = rng.choice("MF")
            given_pool = names.MALE_GIVEN_NAMES if sex == "M" else names.FEMALE_GIVEN_NAMES
            given = rng.sample(given_pool, rng.choice((1, 1, 2, 2, 3)))
            family = rng.choice(names.FAMILY_NAMES)
            if org_type == OrganisationType.EHPAD:
                first_year, last_year = 1925, 1945
            elif registrant == "telesurveillance":
                first_year, last_year = 1935, 1965
            else:
                first_year, last_year = 1932, 2023
            while True:
                birth = date(first_year, 1, 1) + timedelta(
                    days=rng.randrange((date(last_year, 12, 31) - date(first_year, 1, 1)).days)
                )
                key = (family, given[0], birth)
                if key not in seen_traits:
                    seen_traits.add(key)
                    break
            draw = rng.random()
            if draw < 0.80:
                place = rng.choice(names.BRETON_COMMUNES)
            elif draw < 0.93:
                place = rng.choice(names.OTHER_FRENCH_COMMUNES)
            else:
                place = rng.choice(names.FOREIGN_BIRTH_PLACES)
            while True:
                nir = _nir(sex, birth, place, rng.randrange(1, 1000))
                if nir not in seen_nir:
                    seen_nir.add(nir)
                    break
            used_family = ""
            if sex == "F" and birth.year < 1995 and rng.random() < 0.3:
                used_family = rng.choice(names.FAMILY_NAMES)
            ipp = None
            if org_key in IPP_PREFIXES and rng.random() < 0.7:
                ipp_counters[org_key] += 1
                ipp = f"{IPP_PREFIXES[org_key]}{ipp_counters[org_key]:07d}"
            phone = ""
            if rng.random() < 0.6:  # ARCEP range reserved for fiction
                phone = f"06 39 98 {rng.randrange(100):02d} {rng.randrange(100):02d}"
            data = PatientCreate(
                birth_family_name=family,
                birth_given_names=" ".join(given),
                birth_date=birth,
                sex=sex,
                birth_place_insee=place,
                used_family_name=used_family,
                phone=phone,
                ipp=ipp,
            )
            linked = org_type == OrganisationType.CH and rng.random() < 0.25
            plans.append(
                PatientPlan(
                    registrant=registrant,
                    data=data,
                    nir=nir,
                    status_path=_status_path(rng, place.startswith("99")),
                    link_to_chu=linked,
                    consent=_consent_for(rng, org_type, registrant, linked),
                )
            )
    return plans


# --- directory and accounts ----------------------------------------------------------------------------


async def _ensure_organisation(
    session: AsyncSession, spec: OrganisationSpec, summary: SeedSummary
) -> uuid.UUID:
    repo = OrganisationRepository(session)
    organisation = await repo.get_by_finess(spec.finess)
    if organisation is None:
        organisation = await directory_service.create_organisation(
            session,
            None,
            OrganisationCreate(
                finess=spec.finess,
                name=spec.name,
                type=spec.type,
                address_line=spec.address_line,
                postal_code=spec.postal_code,
                city=spec.city,
                commune_insee=spec.commune_insee,
                latitude=spec.latitude,
                longitude=spec.longitude,
                phone=spec.phone,
            ),
        )
        summary.created["organisations"] += 1
    else:
        summary.existing["organisations"] += 1
    added = False
    for service_type, name in spec.services:
        if await ServiceRepository(session).get_by_name(organisation.id, name) is None:
            await directory_service.add_service(
                session, None, organisation.id, ServiceCreate(type=service_type, name=name)
            )
            summary.created["services"] += 1
            added = True
        else:
            summary.existing["services"] += 1
    if added:
        # add_service loads organisation.services *before* inserting: expire the collection, otherwise
        # add_membership (which checks service ids against it) could see a stale list in this session.
        session.expire(organisation, ["services"])
    return organisation.id


async def _ensure_person(
    session: AsyncSession,
    spec: PersonSpec,
    organisations: dict[str, uuid.UUID],
    summary: SeedSummary,
) -> uuid.UUID | None:
    """Professional, memberships and (if it has a login) account. Returns the account id."""
    account = await AccountRepository(session).get_by_email(spec.email) if spec.email else None
    professional = None
    if account is not None:
        professional = account.professional
    elif spec.rpps:
        professional = await ProfessionalRepository(session).get_by_rpps(spec.rpps)
    if professional is None:
        professional = await directory_service.create_professional(
            session,
            None,
            ProfessionalCreate(
                rpps=spec.rpps,
                family_name=spec.family_name,
                given_name=spec.given_name,
                profession=spec.profession,
                specialty=spec.specialty,
                email=spec.email,
                phone=f"02 61 91 80 {spec.rpps_number:02d}" if spec.rpps_number is not None else "",
            ),
        )
        summary.created["professionals"] += 1
    else:
        summary.existing["professionals"] += 1

    memberships = MembershipRepository(session)
    for grant in spec.grants:
        organisation_id = organisations[grant.organisation] if grant.organisation else None
        service_id = None
        if grant.service is not None:
            service = await ServiceRepository(session).get_by_name(organisation_id, grant.service)
            service_id = service.id
        if await memberships.find(professional.id, organisation_id, service_id, grant.role) is None:
            await directory_service.add_membership(
                session,
                None,
                MembershipCreate(
                    professional_id=professional.id,
                    organisation_id=organisation_id,
                    service_id=service_id,
                    role=grant.role,
                ),
            )
            summary.created["memberships"] += 1
        else:
            summary.existing["memberships"] += 1

    if spec.email is None:
        return None
    if account is None:
        account = await auth_service.create_account(
            session, None, professional_id=professional.id, email=spec.email, password=DEMO_PASSWORD
        )
        if spec.totp:
            # Administrators must use a second factor: a fixed, documented secret so the demo is usable.
            account.totp_secret = DEMO_TOTP_SECRET
            account.totp_enabled_at = clock.now()
            await session.flush()
        summary.created["accounts"] += 1
    else:
        summary.existing["accounts"] += 1
    granted = {g.organisation for g in spec.grants}
    organisation_names = sorted(o.name for o in ORGANISATIONS if o.key in granted)
    summary.accounts.append(
        (
            spec.email,
            ", ".join(sorted({ROLE_LABELS[g.role] for g in spec.grants})),
            " ; ".join(organisation_names) or REGION_NAME,
            spec.totp,
        )
    )
    return account.id


async def _principal(session: AsyncSession, account_id: uuid.UUID) -> Principal:
    account = await AccountRepository(session).get_with_professional(account_id)
    return await auth_service.build_principal(session, account, "system")


# --- patients ------------------------------------------------------------------------------------------


async def _ensure_patient(
    session: AsyncSession,
    plan: PatientPlan,
    principal: Principal,
    organisation_id: uuid.UUID,
    chu_id: uuid.UUID,
    texts: dict[tuple[str, str], uuid.UUID],
    summary: SeedSummary,
) -> None:
    data = plan.data.model_copy(update={"organisation_id": organisation_id})
    existing = await patient_service.probable_duplicates(
        session, principal, data.birth_family_name, data.first_given_name or "", data.birth_date
    )
    if existing:
        summary.existing["patients"] += 1
        return
    patient, _ = await patient_service.register_patient(session, principal, data)
    summary.created["patients"] += 1
    for status, evidence in plan.status_path:
        with_ins = evidence == IdentityEvidence.TELESERVICE_INSI
        await patient_service.change_identity_status(
            session,
            principal,
            patient.id,
            IdentityStatusChangeCreate(
                status=status,
                evidence=evidence,
                reason="Appel au téléservice INSi (démo)" if with_ins else "Pièce d'identité contrôlée",
                ins_matricule=plan.nir if with_ins else None,
                ins_oid=identifiers.OID_INS_NIR_DEMO if with_ins else None,
            ),
        )
        summary.created[status.value] += 1
    if plan.link_to_chu:
        await patient_service.link_patient_to_organisation(
            session, principal, patient.id, chu_id, f"demo:teleexpertise:{patient.id.hex[:8]}"
        )
        summary.created["care_links"] += 1
    if plan.consent is not None:
        scope_type, scope_code, decision, method = plan.consent
        await consent_service.record_consent(
            session,
            principal,
            patient.id,
            ConsentCreate(
                scope_type=scope_type,
                scope_code=scope_code,
                decision=decision,
                information_text_id=texts[(scope_type.value, scope_code)],
                method=method,
                organisation_id=organisation_id,
                # A minor's decision is the legal representative's (L.1111-4 CSP).
                **(
                    {"given_by": ConsentGiver.LEGAL_REPRESENTATIVE, "representative_name": "Parent (démo)"}
                    if is_minor(patient.birth_date)
                    else {}
                ),
            ),
        )
        summary.created["consents"] += 1


# --- entry point ---------------------------------------------------------------------------------------


# --- offers and on-call rota ------------------------------------------------------------------------------

NEUROSURGERY_ROTA = "Astreinte de neurochirurgie du CHU"
STROKE_ROTA = "Astreinte TéléAVC de la région"
ROTA_WEEKS = 8


async def _ensure_rota(
    session: AsyncSession,
    admin: Principal,
    chu_id: uuid.UUID,
    primary: uuid.UUID,
    backup: uuid.UUID,
    summary: SeedSummary,
    name: str = NEUROSURGERY_ROTA,
    ack_minutes: int = 5,
) -> uuid.UUID:
    """A 24-hour duty every day 08:30 → 08:30 (the neurosurgeon, the neurologist as backup; or the stroke duty),
    for the coming weeks."""
    from telesante.oncall import service as oncall_service
    from telesante.oncall.models import ShiftRole
    from telesante.oncall.repository import RotaRepository
    from telesante.oncall.schemas import PatternCreate, RotaCreate

    existing = [r for r in await RotaRepository(session).list_for_organisation(chu_id) if r.name == name]
    if existing:
        summary.existing["rotas"] += 1
        return existing[0].id
    rota = await oncall_service.create_rota(
        session,
        admin,
        RotaCreate(name=name, organisation_id=chu_id, head_professional_id=primary, ack_minutes=ack_minutes),
    )
    today = clock.to_paris(clock.now()).date()
    for professional_id, role in ((primary, ShiftRole.PRIMARY), (backup, ShiftRole.BACKUP)):
        _, shifts = await oncall_service.add_pattern(
            session,
            admin,
            rota.id,
            PatternCreate(
                professional_id=professional_id,
                role=role,
                label="Garde de 24 h",
                weekdays=[1, 2, 3, 4, 5, 6, 7],
                start_time=time(8, 30),
                end_time=time(8, 30),
                valid_from=today - timedelta(days=1),
                valid_until=today + timedelta(weeks=ROTA_WEEKS),
            ),
        )
        summary.created["shifts"] += len(shifts)
    summary.created["rotas"] += 1
    return rota.id


async def _ensure_offers(
    session: AsyncSession,
    admin: Principal,
    organisations: dict[str, uuid.UUID],
    rota_id: uuid.UUID,
    summary: SeedSummary,
    stroke_rota_id: uuid.UUID,
) -> None:
    from telesante.offers import service as offer_service
    from telesante.offers.models import ActType, Routing
    from telesante.offers.schemas import OfferCreate

    chu = organisations["chu"]
    services = {s.name: s.id for s in (await OrganisationRepository(session).get_detail(chu)).services}
    wanted = [
        OfferCreate(
            organisation_id=chu,
            service_id=services.get("Neurochirurgie"),
            title="Avis neurochirurgical 24/7 — traumatisme crânien",
            description="Patient traumatisé crânien aux urgences : avis du neurochirurgien de garde (modèle TELURGE).",
            act_type=ActType.TELEEXPERTISE,
            specialty="Neurochirurgie",
            form_code="trauma_cranien",
            routing=Routing.ON_CALL,
            rota_id=rota_id,
            response_minutes=30,
            urgent=True,
            ack_minutes=5,
        ),
        # TéléAVC: the neurologist on duty for the region's hospitals, paged at once, escalating after 3 minutes.
        OfferCreate(
            organisation_id=chu,
            service_id=services.get("Unité neurovasculaire"),
            title="TéléAVC — alerte thrombolyse 24/7",
            description="Suspicion d'AVC aux urgences dans les délais d'une thrombolyse ou d'une thrombectomie : le "
            "neurologue de garde voit le patient en vidéo et l'imagerie, et décide.",
            act_type=ActType.TELEEXPERTISE,
            specialty="Neurologie",
            form_code="alerte_avc",
            routing=Routing.ON_CALL,
            rota_id=stroke_rota_id,
            response_minutes=15,
            urgent=True,
            ack_minutes=3,
        ),
        # The radiologists shared by three hospitals read, as a federation, the exams of the region's hospitals.
        OfferCreate(
            organisation_id=organisations["ch_saint_brieuc"],
            title="Téléradiologie de la fédération — interprétation à distance",
            description="Examens des hôpitaux de la région lus par les radiologues de la fédération (Rives d'Armor, "
            "Golfe, Clos-Poulet) : justification avant réalisation, interprétation, compte rendu signé (charte G4).",
            act_type=ActType.TELEEXPERTISE,
            specialty="Radiologie",
            form_code="teleradiologie",
            routing=Routing.POOL,
            response_minutes=60,
            urgent=True,
        ),
        OfferCreate(
            organisation_id=chu,
            service_id=services.get("Neurologie"),
            title="Avis neurologique",
            act_type=ActType.TELEEXPERTISE,
            specialty="Neurologie",
            form_code="question_generique",
            routing=Routing.POOL,
            response_minutes=24 * 60,
        ),
    ]
    current = set()
    for organisation_id in {data.organisation_id for data in wanted}:
        current |= {o.title for o in await offer_service.list_organisation_offers(session, organisation_id)}
    for data in wanted:
        if data.title in current:
            summary.existing["offers"] += 1
            continue
        await offer_service.create_offer(session, admin, data)
        summary.created["offers"] += 1


# Where patients sit for a teleconsultation, with what, and who assists them there.
SITES = (
    (
        "ehpad_lannion",
        "Salle de soins du 1er étage",
        "room",
        ("camera", "stethoscope", "oximeter", "blood_pressure"),
        "infirmiere_ehpad",
    ),
    (
        "pharmacie_lorient",
        "Cabine de téléconsultation",
        "booth",
        ("camera", "otoscope", "stethoscope", "oximeter", "thermometer", "blood_pressure"),
        "pharmacien",
    ),
)


async def _ensure_teleconsultation(
    session: AsyncSession,
    admin: Principal,
    organisations: dict[str, uuid.UUID],
    accounts: dict[str, uuid.UUID],
    summary: SeedSummary,
) -> None:
    """The CHU's geriatric teleconsultation (offer, the geriatrician's weekday availability for eight weeks) and the
    teleconsultation sites of an EHPAD and a pharmacy, with their equipment and staff."""
    from datetime import time, timedelta

    from telesante.config import get_settings
    from telesante.kit import clock
    from telesante.offers import service as offer_service
    from telesante.offers.models import ActType, Routing
    from telesante.offers.schemas import OfferCreate
    from telesante.scheduling import service as scheduling
    from telesante.scheduling.repository import PatternRepository, SiteRepository
    from telesante.scheduling.schemas import PatternCreate, SiteCreate

    chu = organisations["chu"]
    services = {s.name: s.id for s in (await OrganisationRepository(session).get_detail(chu)).services}
    title = "Téléconsultation de gériatrie"
    offer = next(
        (o for o in await offer_service.list_organisation_offers(session, chu) if o.title == title), None
    )
    if offer is None:
        offer = await offer_service.create_offer(
            session,
            admin,
            OfferCreate(
                organisation_id=chu,
                service_id=services.get("Gériatrie"),
                title=title,
                description="Résidents d'EHPAD et patients âgés vus par vidéo, accompagnés par l'infirmière ou le "
                "pharmacien : chutes, troubles cognitifs, plaies, adaptation des traitements.",
                act_type=ActType.TELECONSULTATION,
                specialty="Gériatrie",
                form_code="question_generique",
                routing=Routing.POOL,
                response_minutes=7 * 24 * 60,
            ),
        )
        summary.created["offers"] += 1
    else:
        summary.existing["offers"] += 1
    professional = {
        key: (await AccountRepository(session).get_with_professional(accounts[key])).professional_id
        for key in ("geriatre", "infirmiere_ehpad", "pharmacien")
    }
    for org_key, name, kind, equipment, staff in SITES:
        if await SiteRepository(session).get_by_name(organisations[org_key], name) is not None:
            summary.existing["sites"] += 1
            continue
        await scheduling.create_site(
            session,
            admin,
            SiteCreate(
                organisation_id=organisations[org_key],
                name=name,
                kind=kind,
                equipment=list(equipment),
                staff_professional_ids=[professional[staff]],
            ),
        )
        summary.created["sites"] += 1
    if await PatternRepository(session).list_for_professional(professional["geriatre"]):
        return
    today = clock.to_paris(clock.now()).date()
    for start, end in ((time(9, 0), time(12, 0)), (time(14, 0), time(17, 0))):
        _pattern, slots = await scheduling.add_pattern(
            session,
            admin,
            PatternCreate(
                professional_id=professional["geriatre"],
                offer_id=offer.id,
                weekdays=[1, 2, 3, 4, 5],
                start_time=start,
                end_time=end,
                slot_minutes=20,
                valid_from=today,
                valid_until=today + timedelta(weeks=8),
            ),
            get_settings(),
        )
        summary.created["slots"] += slots


# The demo's DICOM senders: `storescu -aet CT_ST_BRIEUC -aec TELESANTE 127.0.0.1 11112 <files>` feeds the demo.
DICOM_PEERS = (
    ("ch_saint_brieuc", "CT_ST_BRIEUC", "Scanner des urgences"),
    ("chu", "PACS_CHU", "PACS du CHU"),
)


async def _ensure_dicom_peers(session: AsyncSession, organisations, summary: SeedSummary) -> None:
    from telesante.imaging.repository import ImagingRepository
    from telesante.imaging.service import register_peer

    for key, ae_title, description in DICOM_PEERS:
        if await ImagingRepository(session).get_peer_by_title(ae_title) is not None:
            summary.existing["émetteurs DICOM"] += 1
            continue
        await register_peer(session, None, organisations[key], ae_title, description)
        summary.created["émetteurs DICOM"] += 1


DEMO_CT_SLICES = 120


async def _ensure_demo_ct(session: AsyncSession, store, organisations, summary: SeedSummary) -> None:
    """A head CT of a demo patient of Saint-Brieuc, as its scanner would send it (IPP and identity in the header):
    matched to the patient, ready to attach to a request and read in the viewer."""
    from telesante.imaging import service as imaging_service
    from telesante.imaging.phantom import head_ct

    plan = next(
        p
        for p in plan_patients()
        if p.data.ipp and p.data.ipp.startswith("RDA") and p.registrant == "urgentiste"
    )
    given = plan.data.birth_given_names.split(" ")[0]
    files = head_ct(
        DEMO_CT_SLICES,
        uid_seed="telesante-demo-head-ct",
        patient_id=plan.data.ipp,
        patient_name=f"{plan.data.birth_family_name}^{given}".upper(),
        birth_date=plan.data.birth_date.strftime("%Y%m%d"),
        sex=plan.data.sex,
        study_date=clock.now().strftime("%Y%m%d"),
    )
    created = False
    for data in files:
        result = await imaging_service.ingest_instance(
            session,
            store,
            data,
            organisation_id=organisations["ch_saint_brieuc"],
            received_from="dicom:CT_ST_BRIEUC",
        )
        created = created or result.created
    summary.created["études d'imagerie"] += int(created)
    summary.existing["études d'imagerie"] += int(not created)


async def seed_demo(session: AsyncSession, store=None) -> SeedSummary:
    """Create what is missing of the demo region in the caller's transaction (flushes, never commits). With a blob
    store, a head CT is received too."""
    summary = SeedSummary()
    organisations = {spec.key: await _ensure_organisation(session, spec, summary) for spec in ORGANISATIONS}
    accounts: dict[str, uuid.UUID] = {}
    for person in PEOPLE:
        account_id = await _ensure_person(session, person, organisations, summary)
        if account_id is not None:
            accounts[person.key] = account_id

    current_texts = await consent_service.list_information_texts(session)
    texts = {(t.scope_type.value, t.scope_code): t.id for t in current_texts}
    home = {p.key: organisations[p.grants[0].organisation] for p in PEOPLE if p.grants[0].organisation}
    regional_admin = await _principal(session, accounts["admin"])
    professionals = {
        key: (await AccountRepository(session).get_with_professional(accounts[key])).professional_id
        for key in ("neurochirurgien", "neurologue")
    }
    rota_id = await _ensure_rota(
        session,
        regional_admin,
        organisations["chu"],
        professionals["neurochirurgien"],
        professionals["neurologue"],
        summary,
    )
    stroke_rota_id = await _ensure_rota(
        session,
        regional_admin,
        organisations["chu"],
        professionals["neurologue"],
        professionals["neurochirurgien"],
        summary,
        name=STROKE_ROTA,
        ack_minutes=3,
    )
    await _ensure_offers(session, regional_admin, organisations, rota_id, summary, stroke_rota_id)
    await _ensure_teleconsultation(session, regional_admin, organisations, accounts, summary)
    await _ensure_dicom_peers(session, organisations, summary)
    principals = {key: await _principal(session, accounts[key]) for key, _ in PATIENTS_BY_REGISTRANT}
    for plan in plan_patients():
        await _ensure_patient(
            session,
            plan,
            principals[plan.registrant],
            home[plan.registrant],
            organisations["chu"],
            texts,
            summary,
        )
    await _ensure_monitoring(session, regional_admin, organisations, principals["telesurveillance"], summary)
    if store is not None:
        await _ensure_demo_ct(session, store, organisations, summary)
    return summary


# Four of the patients the CHU's telemonitoring nurse registered, and their last ten days: one gaining weight fast
# (red), one hypotensive (orange), one who stopped weighing (blue), one stable (green).
MONITORING_STORIES = ("gain", "hypotension", "silence", "stable")


async def _ensure_monitoring(
    session: AsyncSession,
    admin: Principal,
    organisations: dict[str, uuid.UUID],
    nurse: Principal,
    summary: SeedSummary,
) -> None:
    """The CHU's heart-failure telemonitoring programme and four enrolled patients with their readings."""
    from datetime import timedelta

    from telesante.consents.models import ConsentDecision
    from telesante.kit import clock
    from telesante.monitoring import clinical
    from telesante.monitoring import service as monitoring
    from telesante.monitoring.models import ReadingSource
    from telesante.monitoring.repository import ProgrammeRepository
    from telesante.monitoring.schemas import DeviceIn, EnrolmentCreate, ProgrammeCreate

    chu = organisations["chu"]
    if await ProgrammeRepository(session).latest(chu, "insuffisance_cardiaque") is not None:
        summary.existing["monitoring"] += len(MONITORING_STORIES)
        return
    programme = await monitoring.create_programme(
        session,
        admin,
        ProgrammeCreate(
            organisation_id=chu,
            code="insuffisance_cardiaque",
            team_name="Télésurveillance de l'insuffisance cardiaque — Cardiologie",
            team_phone="02 61 91 00 42",
            declaration_reference="Démonstration (déclaration fictive)",
            days=[1, 2, 3, 4, 5],
            opens="08:00",
            closes="18:00",
        ),
    )
    plans = [plan for plan in plan_patients() if plan.registrant == "telesurveillance"][
        : len(MONITORING_STORIES)
    ]
    now = clock.now()
    for index, (plan, story) in enumerate(zip(plans, MONITORING_STORIES, strict=False)):
        found = await patient_service.probable_duplicates(
            session,
            nurse,
            plan.data.birth_family_name,
            plan.data.first_given_name or "",
            plan.data.birth_date,
        )
        patient_id = next((id_ for id_, _ in found if id_ is not None), None)
        if patient_id is None:
            continue
        enrolment = await monitoring.enrol_patient(
            session,
            nurse,
            patient_id,
            EnrolmentCreate(
                programme_id=programme.id,
                indication="Insuffisance cardiaque à fraction d'éjection réduite, hospitalisation récente",
                prescriber_name="Dr Cardiologue du CHU (démonstration)",
                decision=ConsentDecision.GIVEN,
                starts_on=clock.to_paris(now).date(),
                devices=[DeviceIn(serial=f"DEMO-SCALE-{index + 1:03d}", kind="Balance connectée")],
            ),
        )
        items = []
        base = 70.0 + 4 * index
        days = range(10, 4, -1) if story == "silence" else range(10, -1, -1)
        for day in days:
            at = now - timedelta(days=day, hours=2)
            kilograms = base + (0.9 * (3 - day) if story == "gain" and day < 3 else 0.1 * (day % 2))
            items.append(
                monitoring.ReadingItem(len(items), patient_id, "29463-7", round(kilograms, 1), "kg", at)
            )
            systolic = 86 if story == "hypotension" and day == 0 else 118 + day % 3
            items.append(monitoring.ReadingItem(len(items), patient_id, "8480-6", systolic, "mm[Hg]", at))
            items.append(monitoring.ReadingItem(len(items), patient_id, "8462-4", 72, "mm[Hg]", at))
            items.append(monitoring.ReadingItem(len(items), patient_id, "8867-4", 68 + day % 5, "/min", at))
        await monitoring.record_readings(session, nurse, items, ReadingSource.DEVICE)
        # the questionnaire from the patient's page: "no" every day, but breathless and swollen ankles this morning
        # for the patient whose weight rose (congestion signs together: red)
        answers = []
        for day in days:
            at = now - timedelta(days=day, hours=2, minutes=-5)
            for question in ("dyspnoea", "orthopnoea", "oedema"):
                worse = story == "gain" and day == 0 and question != "orthopnoea"
                measure = clinical.BY_KEY[question]
                answers.append(
                    monitoring.ReadingItem(
                        len(answers), patient_id, measure.code, worse, None, at, system=measure.system
                    )
                )
        await monitoring.record_readings(session, None, answers, ReadingSource.PATIENT, enrolment=enrolment)
        summary.created["monitoring"] += 1
    await monitoring.evaluate_active(session, [chu])


def format_summary(summary: SeedSummary) -> str:
    lines = [f"Région de démonstration « {REGION_NAME} » prête."]
    for kind, label in SUMMARY_LABELS.items():
        created, existing = summary.created[kind], summary.existing[kind]
        if created or existing:
            lines.append(f"  {label:<42} {created:>4} créé(s), {existing:>4} déjà présent(s)")
    lines.append("")
    lines.append(f"Comptes de démonstration — mot de passe commun : {DEMO_PASSWORD}")
    for email, roles, organisation, totp in summary.accounts:
        lines.append(f"  {email:<42} {roles} — {organisation}{' — TOTP' if totp else ''}")
    lines.append(f"Second facteur (TOTP) des administrateurs : secret {DEMO_TOTP_SECRET}")
    return "\n".join(lines)
