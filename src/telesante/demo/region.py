"""The fictional « Région Armor-Vilaine »: its organisations, their services and the demo professionals.

Everything here is invented (names, addresses, identifiers) but has the real shape: FINESS and RPPS numbers
carry a valid Luhn key, communes are real INSEE codes, telephone numbers are in the ranges ARCEP reserves
for fiction (02 61 91 xx xx, 06 39 98 xx xx).
"""

from __future__ import annotations

from dataclasses import dataclass

from telesante.directory.models import OrganisationType, Profession, Role, ServiceType
from telesante.kit.identifiers import finess_with_key, rpps_with_key

REGION_NAME = "Région Armor-Vilaine"
EMAIL_DOMAIN = "demo.telesante.fr"


@dataclass(frozen=True)
class OrganisationSpec:
    key: str
    finess8: str  # first eight characters; the Luhn key is added
    name: str
    type: OrganisationType
    commune_insee: str
    postal_code: str
    city: str
    address_line: str
    latitude: float
    longitude: float
    phone: str
    services: tuple[tuple[ServiceType, str], ...]

    @property
    def finess(self) -> str:
        return finess_with_key(self.finess8)


URGENCES = (ServiceType.URGENCES, "Urgences")
IMAGERIE = (ServiceType.RADIOLOGIE, "Imagerie médicale")
REGULATION = (ServiceType.REGULATION, "Régulation médicale")
TELECONSULTATION_BOOTH = (ServiceType.CABINE_TELECONSULTATION, "Cabine de téléconsultation")

ORGANISATIONS: tuple[OrganisationSpec, ...] = (
    OrganisationSpec(
        "chu",
        "35990001",
        "CHU d'Armor-Vilaine",
        OrganisationType.CHU,
        "35238",
        "35000",
        "Rennes",
        "2 boulevard des Embruns",
        48.1173,
        -1.6778,
        "02 61 91 00 00",
        (
            (ServiceType.URGENCES, "Urgences adultes"),
            (ServiceType.NEUROLOGIE, "Neurologie"),
            (ServiceType.UNV, "Unité neurovasculaire"),
            (ServiceType.NEUROCHIRURGIE, "Neurochirurgie"),
            (ServiceType.RADIOLOGIE, "Imagerie médicale"),
            (ServiceType.REANIMATION, "Réanimation médicale"),
            (ServiceType.CARDIOLOGIE, "Cardiologie"),
            (ServiceType.GERIATRIE, "Gériatrie"),
        ),
    ),
    OrganisationSpec(
        "ch_saint_brieuc",
        "22990001",
        "Centre hospitalier des Rives d'Armor",
        OrganisationType.CH,
        "22278",
        "22000",
        "Saint-Brieuc",
        "10 rue des Goélands",
        48.5141,
        -2.7603,
        "02 61 91 10 00",
        (URGENCES, IMAGERIE),
    ),
    OrganisationSpec(
        "ch_vannes",
        "56990001",
        "Centre hospitalier du Golfe",
        OrganisationType.CH,
        "56260",
        "56000",
        "Vannes",
        "5 allée des Mouettes",
        47.6582,
        -2.7608,
        "02 61 91 20 00",
        (URGENCES, IMAGERIE),
    ),
    OrganisationSpec(
        "ch_saint_malo",
        "35990002",
        "Centre hospitalier du Clos-Poulet",
        OrganisationType.CH,
        "35288",
        "35400",
        "Saint-Malo",
        "3 quai des Corsaires",
        48.6493,
        -2.0257,
        "02 61 91 30 00",
        (URGENCES, IMAGERIE),
    ),
    OrganisationSpec(
        "ch_quimper",
        "29990001",
        "Centre hospitalier de l'Odet",
        OrganisationType.CH,
        "29232",
        "29000",
        "Quimper",
        "7 rue des Faïenciers",
        47.9960,
        -4.1024,
        "02 61 91 40 00",
        (URGENCES,),
    ),
    OrganisationSpec(
        "ehpad_lannion",
        "22990002",
        "EHPAD Les Hortensias",
        OrganisationType.EHPAD,
        "22113",
        "22300",
        "Lannion",
        "12 chemin des Ajoncs",
        48.7326,
        -3.4566,
        "02 61 91 50 00",
        ((ServiceType.SOINS_EHPAD, "Soins"),),
    ),
    OrganisationSpec(
        "ehpad_fougeres",
        "35990003",
        "EHPAD Le Clos des Marches",
        OrganisationType.EHPAD,
        "35115",
        "35300",
        "Fougères",
        "4 rue du Beffroi",
        48.3524,
        -1.1985,
        "02 61 91 51 00",
        ((ServiceType.SOINS_EHPAD, "Soins"),),
    ),
    OrganisationSpec(
        "pharmacie_lorient",
        "56990002",
        "Pharmacie du Port",
        OrganisationType.PHARMACIE,
        "56121",
        "56100",
        "Lorient",
        "1 place des Thoniers",
        47.7483,
        -3.3700,
        "02 61 91 60 00",
        ((ServiceType.OFFICINE, "Officine"), TELECONSULTATION_BOOTH),
    ),
    OrganisationSpec(
        "msp_pontivy",
        "56990003",
        "Maison de santé pluriprofessionnelle du Blavet",
        OrganisationType.MSP,
        "56178",
        "56300",
        "Pontivy",
        "8 rue des Éclusiers",
        48.0686,
        -2.9630,
        "02 61 91 70 00",
        ((ServiceType.SOINS_PRIMAIRES, "Soins primaires"), TELECONSULTATION_BOOTH),
    ),
    OrganisationSpec(
        "samu_35",
        "35990004",
        "SAMU 35 – Centre 15 Armor-Vilaine Est",
        OrganisationType.SAMU,
        "35238",
        "35000",
        "Rennes",
        "2 boulevard des Embruns",
        48.1173,
        -1.6778,
        "02 61 91 01 15",
        (REGULATION,),
    ),
    OrganisationSpec(
        "samu_56",
        "56990004",
        "SAMU 56 – Centre 15 Armor-Vilaine Sud",
        OrganisationType.SAMU,
        "56260",
        "56000",
        "Vannes",
        "5 allée des Mouettes",
        47.6582,
        -2.7608,
        "02 61 91 21 15",
        (REGULATION,),
    ),
)

# The three hospitals whose radiology departments share the same radiologists (teleradiology pool).
SHARED_RADIOLOGY = ("ch_saint_brieuc", "ch_vannes", "ch_saint_malo")


@dataclass(frozen=True)
class Grant:
    """A membership: organisation key (None = region-wide), service name (None = whole organisation), role."""

    organisation: str | None
    service: str | None
    role: Role


@dataclass(frozen=True)
class PersonSpec:
    key: str
    family_name: str
    given_name: str
    profession: Profession
    specialty: str
    rpps_number: int | None  # index in the fictional RPPS range, None = no RPPS (administrative staff)
    grants: tuple[Grant, ...]
    login: str | None  # local part of the demo e-mail; None = directory only, no account
    totp: bool = False

    @property
    def rpps(self) -> str | None:
        return rpps_with_key(f"1099{self.rpps_number:06d}") if self.rpps_number is not None else None

    @property
    def email(self) -> str | None:
        return f"{self.login}@{EMAIL_DOMAIN}" if self.login else None


def _radiology_pool() -> tuple[Grant, ...]:
    return tuple(Grant(org, IMAGERIE[1], Role.EXPERT) for org in SHARED_RADIOLOGY)


MD, NURSE, ADMIN = Profession.MEDECIN, Profession.INFIRMIER, Profession.ADMINISTRATIF
RADIOLOGY = "Radiodiagnostic et imagerie médicale"
EMERGENCY = "Médecine d'urgence"

PEOPLE: tuple[PersonSpec, ...] = (
    PersonSpec(
        "admin",
        "Morvan",
        "Gwenaëlle",
        ADMIN,
        "Coordination régionale",
        None,
        (Grant(None, None, Role.REGIONAL_ADMIN),),
        "admin",
        totp=True,
    ),
    PersonSpec(
        "admin_chu",
        "Le Guen",
        "Thierry",
        ADMIN,
        "Direction des systèmes d'information",
        None,
        (Grant("chu", None, Role.ORG_ADMIN),),
        "admin.chu",
        totp=True,
    ),
    PersonSpec(
        "urgentiste",
        "Le Goff",
        "Yann",
        MD,
        EMERGENCY,
        1,
        (Grant("ch_saint_brieuc", "Urgences", Role.REQUESTER),),
        "urgentiste",
    ),
    PersonSpec(
        "urgentiste_vannes",
        "Guéguen",
        "Sophie",
        MD,
        EMERGENCY,
        2,
        (Grant("ch_vannes", "Urgences", Role.REQUESTER),),
        "urgentiste.vannes",
    ),
    PersonSpec(
        "urgentiste_quimper",
        "Kerbrat",
        "Erwan",
        MD,
        EMERGENCY,
        3,
        (Grant("ch_quimper", "Urgences", Role.REQUESTER),),
        "urgentiste.quimper",
    ),
    PersonSpec(
        "urgentiste_saint_malo",
        "Robin",
        "Claire",
        MD,
        EMERGENCY,
        4,
        (Grant("ch_saint_malo", "Urgences", Role.REQUESTER),),
        "urgentiste.saint-malo",
    ),
    PersonSpec(
        "neurologue",
        "Tanguy",
        "Maëlle",
        MD,
        "Neurologie (neurovasculaire)",
        5,
        (Grant("chu", "Unité neurovasculaire", Role.EXPERT), Grant("chu", "Neurologie", Role.EXPERT)),
        "neurologue",
    ),
    PersonSpec(
        "neurochirurgien",
        "Jaouen",
        "Pierre-Yves",
        MD,
        "Neurochirurgie",
        6,
        (Grant("chu", "Neurochirurgie", Role.EXPERT),),
        "neurochirurgien",
    ),
    PersonSpec("radiologue", "Cadiou", "Hélène", MD, RADIOLOGY, 7, _radiology_pool(), "radiologue"),
    PersonSpec("radiologue_2", "Riou", "Marc", MD, RADIOLOGY, 8, _radiology_pool(), None),
    PersonSpec("radiologue_3", "Prigent", "Soizic", MD, RADIOLOGY, 9, _radiology_pool(), None),
    PersonSpec(
        "infirmiere_ehpad",
        "Hamon",
        "Laure",
        NURSE,
        "Infirmière coordinatrice",
        10,
        (Grant("ehpad_lannion", "Soins", Role.ASSISTANT),),
        "infirmiere.ehpad",
    ),
    PersonSpec(
        "infirmiere_ehpad2",
        "Le Bris",
        "Katell",
        NURSE,
        "Infirmière",
        11,
        (Grant("ehpad_fougeres", "Soins", Role.ASSISTANT),),
        "infirmiere.ehpad2",
    ),
    PersonSpec(
        "pharmacien",
        "Péron",
        "Loïc",
        Profession.PHARMACIEN,
        "Pharmacie d'officine",
        12,
        (Grant("pharmacie_lorient", "Officine", Role.ASSISTANT),),
        "pharmacien",
    ),
    PersonSpec(
        "medecin_msp",
        "Daniélou",
        "Anne-Laure",
        MD,
        "Médecine générale",
        13,
        (Grant("msp_pontivy", "Soins primaires", Role.REQUESTER),),
        "medecin.msp",
    ),
    PersonSpec(
        "regulateur",
        "Le Corre",
        "Ronan",
        MD,
        "Régulation médicale",
        14,
        (Grant("samu_35", REGULATION[1], Role.SAMU_REGULATOR),),
        "regulateur",
    ),
    PersonSpec(
        "regulateur_56",
        "Le Roux",
        "Isabelle",
        MD,
        "Régulation médicale",
        15,
        (Grant("samu_56", REGULATION[1], Role.SAMU_REGULATOR),),
        "regulateur.56",
    ),
    PersonSpec(
        "geriatre",
        "Le Meur",
        "Armelle",
        MD,
        "Gériatrie",
        17,
        (Grant("chu", "Gériatrie", Role.EXPERT),),
        "geriatre",
    ),
    PersonSpec(
        "telesurveillance",
        "Quéré",
        "Nathalie",
        NURSE,
        "Télésurveillance cardiaque",
        16,
        (Grant("chu", "Cardiologie", Role.MONITORING_OPERATOR),),
        "telesurveillance",
    ),
    PersonSpec(
        "secretariat_geriatrie",
        "Lozac'h",
        "Gaëlle",
        ADMIN,
        "Secrétariat de gériatrie",
        None,
        (Grant("chu", "Gériatrie", Role.MEDICAL_SECRETARY),),
        "secretariat.geriatrie",
    ),
    PersonSpec(
        "evaluateur",
        "Berthou",
        "Julien",
        ADMIN,
        "Évaluation régionale",
        None,
        (Grant(None, None, Role.EVALUATOR),),
        "evaluateur",
    ),
)

# How many synthetic patients each clinician registers (in their organisation): 200 in all.
PATIENTS_BY_REGISTRANT: tuple[tuple[str, int], ...] = (
    ("urgentiste", 30),
    ("urgentiste_vannes", 25),
    ("urgentiste_quimper", 20),
    ("urgentiste_saint_malo", 20),
    ("neurologue", 30),
    ("telesurveillance", 10),
    ("infirmiere_ehpad", 15),
    ("infirmiere_ehpad2", 15),
    ("pharmacien", 10),
    ("medecin_msp", 15),
    ("regulateur", 5),
    ("regulateur_56", 5),
)

# Local patient identifier (IPP) prefixes of the hospitals' own information systems.
IPP_PREFIXES = {
    "chu": "CHUAV",
    "ch_saint_brieuc": "RDA",
    "ch_vannes": "GOLFE",
    "ch_saint_malo": "CLP",
    "ch_quimper": "ODET",
}
