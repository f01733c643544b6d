"""Domain objects -> FHIR R4 resources (``fhir.resources.R4B`` models), following FR Core where it applies.

Pure functions: no database access, no request. Identifier systems, codes and extensions come from the
FR Core implementation guide (Interop'Santé, github.com/Interop-Sante/hl7.fhir.fr.core); the choices made
where FR Core leaves room are written down in docs/domains/fhir.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from fhir.resources.R4B.address import Address
from fhir.resources.R4B.bundle import (
    Bundle,
    BundleEntry,
    BundleEntryResponse,
    BundleEntrySearch,
    BundleLink,
)
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from telesante import __version__
from telesante.directory.models import ORGANISATION_TYPE_LABELS, Organisation, Professional
from telesante.kit import communes
from telesante.kit.identifiers import INS_OIDS, OID_INS_NIA
from telesante.patients.models import IdentityStatus, Patient, Sex

FHIR_VERSION = "4.0.1"

# --- identifier systems and code systems ---------------------------------------------------------------

FR_CORE = "https://hl7.fr/ig/fhir/core"
FR_CORE_V2_0203 = f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0203"
HL7_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

INS_SYSTEMS = {f"urn:oid:{oid}": oid for oid in INS_OIDS}  # urn:oid:1.2.250.1.213.1.4.8 -> OID
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
# IPPs have no national namespace: one system per organisation, keyed by its FINESS (docs/domains/fhir.md).
IPP_SYSTEM_PREFIX = "urn:telesante:ipp:"

IDENTITY_RELIABILITY_URL = f"{FR_CORE}/StructureDefinition/fr-core-identity-reliability"
IDENTITY_STATUS_SYSTEM = f"{FR_CORE}/CodeSystem/fr-core-cs-identity-status"
BIRTH_LIST_GIVEN_NAME_URL = f"{FR_CORE}/StructureDefinition/fr-core-patient-birth-list-given-name"
BIRTH_PLACE_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INSEE_CODE_URL = f"{FR_CORE}/StructureDefinition/fr-core-address-insee-code"
INSEE_COMMUNE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"

IDENTITY_STATUS_CODES: dict[IdentityStatus, tuple[str, str]] = {
    IdentityStatus.PROVISOIRE: ("PROV", "Identité provisoire"),
    IdentityStatus.RECUPEREE: ("RECUP", "Identité récupérée"),
    IdentityStatus.VALIDEE: ("VALI", "Identité validée"),
    IdentityStatus.QUALIFIEE: ("QUAL", "Identité qualifiée"),
}
GENDERS: dict[Sex, str] = {Sex.M: "male", Sex.F: "female", Sex.I: "unknown"}
SEX_BY_GENDER: dict[str, Sex] = {gender: sex for sex, gender in GENDERS.items()}


def ipp_system(finess: str) -> str:
    return IPP_SYSTEM_PREFIX + finess


def _type(system: str, code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


def _telecom(phone: str, email: str, use: str) -> list[ContactPoint] | None:
    points = []
    if phone:
        points.append(ContactPoint(system="phone", value=phone, use=use))
    if email:
        points.append(ContactPoint(system="email", value=email, use=use))
    return points or None


def _meta(updated_at: datetime | None) -> Meta | None:
    return Meta(lastUpdated=updated_at) if updated_at else None


def _insee_extension(code: str) -> Extension:
    return Extension(url=INSEE_CODE_URL, valueCoding=Coding(system=INSEE_COMMUNE_SYSTEM, code=code))


# --- Patient --------------------------------------------------------------------------------------------


def ins_identifier(patient: Patient) -> Identifier | None:
    """The matricule INS, published only for a qualified identity (Référentiel INS, FR Core Patient INS)."""
    if (
        patient.identity_status != IdentityStatus.QUALIFIEE
        or not patient.ins_matricule
        or not patient.ins_oid
    ):
        return None
    code = INS_OIDS.get(patient.ins_oid)
    if code is None:
        return None
    return Identifier(
        # FR Core: INS-NIA is a temporary number (use temp); NIR, NIR-TEST and NIR-DEMO are official.
        use="temp" if patient.ins_oid == OID_INS_NIA else "official",
        type=_type(FR_CORE_V2_0203, code),
        system=f"urn:oid:{patient.ins_oid}",
        value=patient.ins_matricule,
    )


def _ipp_identifiers(patient: Patient, organisations: Mapping[uuid.UUID, Organisation]) -> list[Identifier]:
    identifiers = []
    for local in sorted(patient.local_identifiers, key=lambda li: (str(li.organisation_id), li.value)):
        organisation = organisations.get(local.organisation_id)
        if organisation is None:  # cannot happen (foreign key); never publish an IPP without its namespace
            continue
        identifiers.append(
            Identifier(
                use="usual",
                type=_type(HL7_V2_0203, "PI", "Patient internal identifier"),
                system=ipp_system(organisation.finess),
                value=local.value,
                assigner=Reference(reference=f"Organization/{organisation.id}", display=organisation.name),
            )
        )
    return identifiers


def _identity_reliability(status: IdentityStatus) -> Extension:
    code, display = IDENTITY_STATUS_CODES[status]
    return Extension(
        url=IDENTITY_RELIABILITY_URL,
        extension=[
            Extension(
                url="identityStatus",
                valueCoding=Coding(system=IDENTITY_STATUS_SYSTEM, code=code, display=display),
            )
        ],
    )


def _birth_place(insee: str) -> Extension:
    """FR Core: patient-birthPlace, valueAddress carrying the INSEE code in fr-core-address-insee-code."""
    if insee.startswith("99"):
        address = Address(
            extension=[_insee_extension(insee)], text=f"Né(e) à l'étranger (code pays INSEE {insee})"
        )
    else:
        address = Address(extension=[_insee_extension(insee)], city=communes.commune_name(insee))
    return Extension(url=BIRTH_PLACE_URL, valueAddress=address)


def _patient_names(patient: Patient) -> list[HumanName]:
    names = [
        HumanName(
            use="official",
            family=patient.birth_family_name,
            # FR Core Patient INS: given holds the first given name, the full list goes in the extension.
            given=[patient.first_given_name],
            extension=[Extension(url=BIRTH_LIST_GIVEN_NAME_URL, valueString=patient.birth_given_names)],
        )
    ]
    if patient.used_family_name or patient.used_given_name:
        names.append(
            HumanName(
                use="usual",
                family=patient.used_family_name or patient.birth_family_name,
                given=[patient.used_given_name or patient.first_given_name],
            )
        )
    return names


def patient_resource(patient: Patient, organisations: Mapping[uuid.UUID, Organisation]) -> FhirPatient:
    """``patient.local_identifiers`` must be loaded; ``organisations`` holds the organisations of its IPPs."""
    identifiers = [i for i in [ins_identifier(patient)] if i is not None] + _ipp_identifiers(
        patient, organisations
    )
    address = None
    if patient.address_line or patient.postal_code or patient.city:
        address = [
            Address(
                use="home",
                line=[patient.address_line] if patient.address_line else None,
                postalCode=patient.postal_code or None,
                city=patient.city or None,
            )
        ]
    return FhirPatient(
        id=str(patient.id),
        meta=_meta(patient.updated_at),
        extension=[_identity_reliability(patient.identity_status), _birth_place(patient.birth_place_insee)],
        identifier=identifiers or None,
        active=True,
        name=_patient_names(patient),
        telecom=_telecom(patient.phone, patient.email, "home"),
        gender=GENDERS[patient.sex],
        birthDate=patient.birth_date,
        address=address,
        generalPractitioner=(
            [Reference(reference=f"Practitioner/{patient.gp_professional_id}")]
            if patient.gp_professional_id
            else None
        ),
    )


# --- Practitioner ---------------------------------------------------------------------------------------


def practitioner_resource(professional: Professional) -> Practitioner:
    identifiers = None
    # Without an RPPS number the idnps is platform-local ("LOCAL-..."): never published as an IDNPS.
    if professional.rpps and professional.idnps.startswith("8"):
        identifiers = [
            Identifier(
                use="official",
                type=_type(FR_CORE_V2_0203, "IDNPS"),
                system=IDNPS_SYSTEM,
                value=professional.idnps,
            ),
            Identifier(type=_type(FR_CORE_V2_0203, "RPPS"), system=RPPS_SYSTEM, value=professional.rpps),
        ]
    return Practitioner(
        id=str(professional.id),
        meta=_meta(professional.updated_at),
        identifier=identifiers,
        active=professional.active,
        name=[HumanName(use="official", family=professional.family_name, given=[professional.given_name])],
        telecom=_telecom(professional.phone, professional.email, "work"),
    )


# --- Organization ---------------------------------------------------------------------------------------


def organization_resource(organisation: Organisation) -> Organization:
    address = Address(
        use="work",
        extension=[_insee_extension(organisation.commune_insee)] if organisation.commune_insee else None,
        line=[organisation.address_line] if organisation.address_line else None,
        postalCode=organisation.postal_code or None,
        city=organisation.city or None,
        district=organisation.departement or None,
        country="FR",
    )
    return Organization(
        id=str(organisation.id),
        meta=_meta(organisation.updated_at),
        identifier=[
            Identifier(
                use="official",
                type=_type(FR_CORE_V2_0203, "FINEG"),
                system=FINESS_SYSTEM,
                value=organisation.finess,
            ),
            # idNat_Struct of an establishment: "1" + FINESS (ANS, annexe transverse du CI-SIS).
            Identifier(
                use="official",
                type=_type(FR_CORE_V2_0203, "IDNST"),
                system=IDNST_SYSTEM,
                value="1" + organisation.finess,
            ),
        ],
        active=organisation.active,
        type=[CodeableConcept(text=ORGANISATION_TYPE_LABELS[organisation.type])],
        name=organisation.name,
        telecom=_telecom(organisation.phone, "", "work"),
        address=[address],
    )


# --- Bundle ---------------------------------------------------------------------------------------------


def searchset(
    entries: Iterable[tuple[str, Resource]], total: int, links: Mapping[str, str], timestamp: datetime
) -> Bundle:
    """Search result: ``entries`` are (fullUrl, resource); ``links`` maps relation (self, next...) to URL."""
    return Bundle(
        type="searchset",
        timestamp=timestamp,
        total=total,
        link=[BundleLink(relation=relation, url=url) for relation, url in links.items()],
        entry=[
            BundleEntry(fullUrl=full_url, resource=resource, search=BundleEntrySearch(mode="match"))
            for full_url, resource in entries
        ]
        or None,
    )


def transaction_response(locations: Iterable[str], timestamp: datetime) -> Bundle:
    """Answer to a transaction: one entry per entry posted, in the same order, each created."""
    return Bundle(
        type="transaction-response",
        timestamp=timestamp,
        entry=[
            BundleEntry(response=BundleEntryResponse(status="201 Created", location=location))
            for location in locations
        ],
    )


# --- CapabilityStatement --------------------------------------------------------------------------------

_SP = "http://hl7.org/fhir/SearchParameter"
SEARCH_PARAMETERS: dict[str, list[tuple[str, str, str, str]]] = {
    # name, type, definition, documentation
    "Patient": [
        (
            "identifier",
            "token",
            f"{_SP}/Patient-identifier",
            "Matricule INS (identités qualifiées seulement) : urn:oid:1.2.250.1.213.1.4.8|<matricule> ; "
            "IPP : urn:telesante:ipp:<FINESS>|<IPP> ; une valeur sans système est un matricule INS "
            "si elle en a "
            "la forme et la clé, sinon un IPP.",
        ),
        (
            "family",
            "string",
            f"{_SP}/individual-family",
            "Début du nom de naissance ou du nom utilisé, sans tenir compte des accents ni de la casse.",
        ),
        ("given", "string", f"{_SP}/individual-given", "Début d'un prénom de naissance (accents ignorés)."),
        (
            "birthdate",
            "date",
            f"{_SP}/individual-birthdate",
            "Date de naissance exacte AAAA-MM-JJ (préfixe eq admis).",
        ),
        ("gender", "token", f"{_SP}/individual-gender", "male | female | unknown | other"),
    ],
    "Practitioner": [
        (
            "identifier",
            "token",
            f"{_SP}/Practitioner-identifier",
            "IDNPS (urn:oid:1.2.250.1.71.4.2.1|8<RPPS>) ou RPPS (https://rpps.esante.gouv.fr|<RPPS>) ; "
            "valeur seule admise.",
        ),
        ("family", "string", f"{_SP}/individual-family", "Début du nom d'exercice."),
        ("name", "string", f"{_SP}/Practitioner-name", "Partie du nom ou du prénom."),
    ],
    "Organization": [
        (
            "identifier",
            "token",
            f"{_SP}/Organization-identifier",
            "FINESS (https://finess.esante.gouv.fr|<FINESS>) ; valeur seule admise.",
        ),
        ("name", "string", f"{_SP}/Organization-name", "Partie de la raison sociale."),
    ],
    "ServiceRequest": [
        ("_id", "token", f"{_SP}/Resource-id", "Identifiant de la demande."),
        ("patient", "reference", f"{_SP}/clinical-patient", "Patient/<id>."),
        ("subject", "reference", f"{_SP}/ServiceRequest-subject", "Patient/<id>."),
        (
            "status",
            "token",
            f"{_SP}/ServiceRequest-status",
            "draft | active (envoyée, acceptée, en cours, répondue, délai dépassé) | completed (clôturée) | "
            "revoked (refusée, annulée).",
        ),
        (
            "requester",
            "reference",
            f"{_SP}/ServiceRequest-requester",
            "Practitioner/<id> (le requérant) ou Organization/<id> (son établissement).",
        ),
        (
            "performer",
            "reference",
            f"{_SP}/ServiceRequest-performer",
            "Organization/<id> (établissement sollicité) ou Practitioner/<id> (expert qui a pris la demande).",
        ),
        (
            "authored",
            "date",
            f"{_SP}/ServiceRequest-authored",
            "Date d'envoi (de création pour un brouillon) ; préfixes eq, gt, ge, lt, le ; répétable pour un "
            "intervalle ; date sans heure en heure de Paris.",
        ),
        ("_lastUpdated", "date", f"{_SP}/Resource-lastUpdated", "Dernière modification ; mêmes règles."),
    ],
    "Task": [
        ("_id", "token", f"{_SP}/Resource-id", "Identifiant (celui de la demande)."),
        ("patient", "reference", f"{_SP}/Task-patient", "Patient/<id>."),
        ("subject", "reference", f"{_SP}/Task-subject", "Patient/<id>."),
        ("focus", "reference", f"{_SP}/Task-focus", "ServiceRequest/<id>."),
        ("based-on", "reference", f"{_SP}/Task-based-on", "ServiceRequest/<id>."),
        (
            "status",
            "token",
            f"{_SP}/Task-status",
            "draft | requested | accepted | rejected | in-progress | completed | cancelled.",
        ),
        (
            "business-status",
            "token",
            f"{_SP}/Task-business-status",
            "État exact de la demande (système urn:telesante:statut-demande) : draft, sent, accepted, declined, "
            "in_progress, answered, closed, cancelled, expired.",
        ),
        ("owner", "reference", f"{_SP}/Task-owner", "Practitioner/<id> ou Organization/<id>."),
        ("requester", "reference", f"{_SP}/Task-requester", "Organization/<id> (ou Practitioner/<id>)."),
        ("authored-on", "date", f"{_SP}/Task-authored-on", "Comme authored de ServiceRequest."),
        ("_lastUpdated", "date", f"{_SP}/Resource-lastUpdated", "Dernière modification."),
    ],
    "DiagnosticReport": [
        ("patient", "reference", f"{_SP}/clinical-patient", "Patient/<id>."),
        ("subject", "reference", f"{_SP}/DiagnosticReport-subject", "Patient/<id>."),
        ("based-on", "reference", f"{_SP}/DiagnosticReport-based-on", "ServiceRequest/<id>."),
        (
            "status",
            "token",
            f"{_SP}/DiagnosticReport-status",
            "final (seuls les comptes rendus signés sont publiés).",
        ),
    ],
    "Questionnaire": [
        (
            "url",
            "uri",
            f"{_SP}/Questionnaire-url",
            "urn:telesante:formulaire:<code> (|<version> facultatif).",
        ),
        ("name", "string", f"{_SP}/Questionnaire-name", "Partie du code du formulaire."),
    ],
    "HealthcareService": [
        ("organization", "reference", f"{_SP}/HealthcareService-organization", "Organization/<id>."),
        ("name", "string", f"{_SP}/HealthcareService-name", "Partie de l'intitulé de l'offre."),
        (
            "active",
            "token",
            f"{_SP}/HealthcareService-active",
            "true (seules les offres actives sont listées).",
        ),
    ],
    "Schedule": [
        ("actor", "reference", f"{_SP}/Schedule-actor", "Practitioner/<id> (obligatoire)."),
        ("active", "token", f"{_SP}/Schedule-active", "true (seuls les agendas en cours sont listés)."),
    ],
    "Slot": [
        ("schedule", "reference", f"{_SP}/Slot-schedule", "Schedule/<id> (obligatoire)."),
        ("status", "token", f"{_SP}/Slot-status", "free (seuls les créneaux libres sont recherchés)."),
        ("start", "date", f"{_SP}/Slot-start", "Intervalle : start=ge…&start=lt…"),
    ],
    "Appointment": [
        ("patient", "reference", f"{_SP}/clinical-patient", "Patient/<id>."),
        ("practitioner", "reference", f"{_SP}/Appointment-practitioner", "Practitioner/<id>."),
        (
            "date",
            "date",
            f"{_SP}/clinical-date",
            "Début ; au plus 92 jours (défaut : 14 jours dès aujourd'hui).",
        ),
        ("status", "token", f"{_SP}/Appointment-status", "booked, cancelled, fulfilled, noshow."),
    ],
    # Two kinds: the video call of a teleconsultation or of a stroke case (class VR), the stroke case (class EMER).
    # One of patient/subject, based-on, appointment, part-of is required; the others narrow.
    "Encounter": [
        (
            "patient",
            "reference",
            f"{_SP}/clinical-patient",
            "Patient/<id> : les rencontres du patient, les deux sortes dans un seul Bundle (prises en charge AVC, "
            "classe EMER ; appels vidéo des téléconsultations et des alertes AVC, classe VR), les plus récentes "
            "d'abord.",
        ),
        ("subject", "reference", f"{_SP}/Encounter-subject", "Patient/<id> (comme patient)."),
        (
            "based-on",
            "reference",
            f"{_SP}/Encounter-based-on",
            "ServiceRequest/<id> : les rencontres fondées sur cet acte (la prise en charge AVC née de la demande "
            "d'avis neurologique et son appel vidéo, ou l'appel d'une téléconsultation).",
        ),
        (
            "appointment",
            "reference",
            f"{_SP}/Encounter-appointment",
            "Appointment/<id> : l'appel vidéo d'un rendez-vous de téléconsultation (classe VR).",
        ),
        (
            "part-of",
            "reference",
            f"{_SP}/Encounter-part-of",
            "Encounter/<id d'une prise en charge AVC> : son appel vidéo (classe VR).",
        ),
        (
            "status",
            "token",
            f"{_SP}/Encounter-status",
            "AVC : triaged (alerte en attente du neurologue), in-progress (pris en charge, décision prise), "
            "finished (compte rendu signé) ; appel vidéo : planned, in-progress, finished.",
        ),
        (
            "class",
            "token",
            f"{_SP}/Encounter-class",
            "EMER (prise en charge AVC) ou VR (appel vidéo), système "
            "http://terminology.hl7.org/CodeSystem/v3-ActCode.",
        ),
        (
            "date",
            "date",
            f"{_SP}/clinical-date",
            "Période (AVC : arrivée → clôture ; appel : début → fin ; en cours : jusqu'à maintenant) qui "
            "rencontre l'intervalle demandé (un appel pas encore commencé n'a pas de période) ; "
            "préfixes eq, gt, ge, lt, le ; répétable pour un intervalle.",
        ),
    ],
    # The stroke cases' measures: NIHSS (total and items), blood pressure, weight, glucose, platelets, INR.
    "Observation": [
        (
            "patient",
            "reference",
            f"{_SP}/clinical-patient",
            "Patient/<id> (ou encounter : l'un est obligatoire).",
        ),
        ("subject", "reference", f"{_SP}/Observation-subject", "Patient/<id> (comme patient)."),
        (
            "encounter",
            "reference",
            f"{_SP}/clinical-encounter",
            "Encounter/<id d'une prise en charge AVC>.",
        ),
        (
            "code",
            "token",
            f"{_SP}/clinical-code",
            "LOINC (http://loinc.org) : 72089-6 NIHSS total, 85354-9 pression artérielle, 29463-7 poids, "
            "15074-8 glycémie (mmol/L), 777-3 plaquettes, 6301-6 INR. Un code inconnu ne trouve rien.",
        ),
        ("category", "token", f"{_SP}/Observation-category", "survey (NIHSS), vital-signs, laboratory."),
        (
            "date",
            "date",
            f"{_SP}/clinical-date",
            "Moment de la mesure (effectiveDateTime) ; préfixes eq, gt, ge, lt, le ; répétable.",
        ),
    ],
}
# Resources read by id only, and those that can be created.
READ_ONLY = ("QuestionnaireResponse", "Binary")
CREATABLE = ("ServiceRequest", "Observation")


def capability_statement(base_url: str, date: datetime) -> CapabilityStatement:
    resources = [
        {
            "type": resource_type,
            "interaction": [
                {"code": "read"},
                {"code": "search-type"},
                *([{"code": "create"}] if resource_type in CREATABLE else []),
            ],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "searchParam": [
                {"name": name, "type": type_, "definition": definition, "documentation": documentation}
                for name, type_, definition, documentation in params
            ],
        }
        for resource_type, params in SEARCH_PARAMETERS.items()
    ] + [
        {"type": resource_type, "interaction": [{"code": "read"}], "versioning": "no-version"}
        for resource_type in READ_ONLY
    ]
    return CapabilityStatement(
        status="active",
        date=date,
        publisher="Télésanté",
        kind="instance",
        software={"name": "Télésanté", "version": __version__},
        implementation={
            "description": "Façade FHIR R4 de la plateforme régionale Télésanté",
            "url": base_url,
        },
        fhirVersion=FHIR_VERSION,
        format=["json"],
        rest=[
            {
                "mode": "server",
                "documentation": (
                    "Lecture et recherche ; création d'une demande de téléexpertise (POST ServiceRequest, "
                    "ou transaction ServiceRequest + Task + QuestionnaireResponse) ; mesures de télésurveillance "
                    "(POST Observation, ou lot « batch » d'Observations : une réponse par entrée). Pagination : _count (au plus 100) et _offset ; "
                    "suivre Bundle.link next/previous. Paramètres inconnus ignorés, sauf avec "
                    "l'en-tête Prefer: handling=strict."
                ),
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "security": {
                    "cors": False,
                    "service": [{"text": "Bearer"}],
                    "description": (
                        "Jeton d'accès de la plateforme dans l'en-tête Authorization: Bearer <jeton>. "
                        "Les patients visibles sont ceux des établissements du titulaire du jeton "
                        "(relation de "
                        "soins) ; chaque lecture et recherche est tracée."
                    ),
                },
                "resource": resources,
            }
        ],
    )
