"""FHIR search: read the query string into the domain's criteria, fetch through the domain services, page.

Parameters follow FHIR R4 search (http://hl7.org/fhir/R4/search.html):

- a parameter with an empty value is ignored;
- an unknown parameter is ignored (and left out of the self link), unless the client sent
  ``Prefer: handling=strict``, in which case it is refused;
- a modifier (``family:exact``), an OR list (``family=a,b``) or a repeated parameter is refused (400) rather
  than silently ignored, since ignoring it would widen the result;
- paging is ``_count`` (at most 100; 0 returns the total only) and ``_offset``; Bundle links carry both.

Patients are searched only through :func:`telesante.patients.service.search_patients`, which narrows to
the principal's care relationships and writes the audit row.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth.principal import Principal
from telesante.directory import service as directory_service
from telesante.directory.models import Organisation, Professional
from telesante.directory.repository import OrganisationRepository
from telesante.fhir import mapping, workflow
from telesante.kit import clock
from telesante.kit.errors import DomainError, NotFound
from telesante.kit.identifiers import check_nir, check_rpps, idnps_from_rpps
from telesante.kit.pagination import MAX_PAGE_SIZE, Page, PageRequest
from telesante.patients import service as patient_service
from telesante.patients.models import IdentityStatus, Patient
from telesante.patients.repository import PatientCriteria

MAX_OFFSET = 1_000_000
MAX_STRING = 100
_DATE = re.compile(r"^(eq)?(\d{4}-\d{2}-\d{2})$")
_PREFIXED_DATE = re.compile(r"^(ne|gt|lt|ge|le|sa|eb|ap)\d")
# Result parameters understood here; _format is checked by the route.
_PAGING = ("_count", "_offset")
_IGNORED = ("_format",)


class InvalidSearch(DomainError):
    """A search the server understands but refuses (bad value, unsupported modifier): HTTP 400."""

    status_code = 400
    code = "recherche-invalide"
    title = "Recherche invalide"


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: values of the supported parameters, the page, and what the self link repeats."""

    values: dict[str, str]
    count: int  # as asked, 0 = total only
    page: PageRequest
    used: list[tuple[str, str]] = field(default_factory=list)
    # parameters that may be repeated (date ranges: authored=ge2026-11-01&authored=lt2026-12-01)
    repeated: dict[str, list[str]] = field(default_factory=dict)


def parse_query(
    params: Sequence[tuple[str, str]],
    supported: Sequence[str],
    *,
    strict: bool,
    repeatable: Sequence[str] = (),
) -> SearchQuery:
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    used: list[tuple[str, str]] = []
    count, offset = 20, 0
    seen: set[str] = set()
    for raw_name, raw_value in params:
        value = raw_value.strip()
        name, _, modifier = raw_name.partition(":")
        if name in _IGNORED:
            continue
        if name not in supported and name not in _PAGING:
            if strict:
                raise InvalidSearch(
                    f"Paramètre de recherche non pris en charge : {raw_name}.", field=raw_name
                )
            continue
        if modifier:
            raise InvalidSearch(f"Modificateur non pris en charge : {raw_name}.", field=raw_name)
        if name in seen and name not in repeatable:
            raise InvalidSearch(f"Le paramètre {name} ne peut être donné qu'une fois.", field=name)
        seen.add(name)
        if not value:
            continue
        if name == "_count":
            count = _integer(name, value, 0, 999_999_999)  # then capped at MAX_PAGE_SIZE
        elif name == "_offset":
            offset = _integer(name, value, 0, MAX_OFFSET)
        else:
            if "," in value:
                raise InvalidSearch(
                    f"{name} : une seule valeur est admise (pas de liste « OU »).", field=name
                )
            if len(value) > MAX_STRING:
                raise InvalidSearch(
                    f"{name} : valeur trop longue (au plus {MAX_STRING} caractères).", field=name
                )
            values.setdefault(name, value)
            repeated.setdefault(name, []).append(value)
            used.append((name, value))
    count = min(count, MAX_PAGE_SIZE)
    return SearchQuery(
        values=values, count=count, page=PageRequest(offset, count or 1), used=used, repeated=repeated
    )


def _integer(name: str, value: str, lowest: int, highest: int) -> int:
    if not re.fullmatch(r"\d{1,9}", value):  # bounded length: int() of a huge string is costly, then refused
        raise InvalidSearch(f"{name} : nombre entier positif ou nul attendu.", field=name)
    number = int(value)
    if not lowest <= number <= highest:
        raise InvalidSearch(f"{name} : valeur attendue entre {lowest} et {highest}.", field=name)
    return number


def parse_token(value: str) -> tuple[str | None, str]:
    """'system|code' -> (system, code); '|code' -> ('', code), no system; 'code' -> (None, code)."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    if not code:
        raise InvalidSearch("identifier : la valeur après « | » est obligatoire.", field="identifier")
    return system, code


def parse_date(name: str, value: str) -> date:
    match = _DATE.match(value)
    if match is None:
        if _PREFIXED_DATE.match(value):
            raise InvalidSearch(f"{name} : seul le préfixe eq est pris en charge.", field=name)
        raise InvalidSearch(f"{name} : date complète attendue au format AAAA-MM-JJ.", field=name)
    try:
        return date.fromisoformat(match.group(2))
    except ValueError:
        raise InvalidSearch(f"{name} : date inexistante ({match.group(2)}).", field=name) from None


_DATE_BOUND = re.compile(
    r"^(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<date>\d{4}(?:-\d{2}(?:-\d{2})?)?)"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<zone>Z|[+-]\d{2}:\d{2})?)?$"
)


def _date_interval(name: str, text: str, time: str | None, zone: str | None) -> tuple[datetime, datetime]:
    """The instant interval [start, end) a FHIR date or dateTime value stands for (local dates: Europe/Paris)."""
    try:
        if time is None:
            parts = [int(p) for p in text.split("-")]
            if len(parts) == 1:
                start, end = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
            elif len(parts) == 2:
                start = date(parts[0], parts[1], 1)
                end = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
            else:
                start = date(*parts)
                end = start + timedelta(days=1)
            return (
                datetime.combine(start, dtime(), clock.PARIS).astimezone(UTC),
                datetime.combine(end, dtime(), clock.PARIS).astimezone(UTC),
            )
        if len(text) != 10:
            raise ValueError
        moment = datetime.fromisoformat(f"{text}T{time}")
    except ValueError:
        raise InvalidSearch(f"{name} : date inexistante ({text}).", field=name) from None
    # Without an offset, "the server's local time zone should be assumed" (R4 search.html#date). A search is not
    # a date typed in a form: any year may be searched, so not clock.from_paris and its 2000–2100 bounds.
    if zone is None:
        moment = moment.replace(tzinfo=clock.PARIS)
    else:
        moment = moment.replace(tzinfo=UTC if zone == "Z" else datetime.strptime(zone, "%z").tzinfo)
    if "." in time:
        precision = timedelta(microseconds=1)
    elif time.count(":") == 2:
        precision = timedelta(seconds=1)
    else:
        precision = timedelta(minutes=1)
    start = moment.astimezone(UTC)
    return start, start + precision


def parse_date_range(name: str, values: Sequence[str]) -> tuple[datetime | None, datetime | None]:
    """FHIR date search (http://hl7.org/fhir/R4/search.html#date) on an instant, as one [start, end) interval:
    prefixes eq (default), gt, ge, lt, le; several values intersect (a range). ne, sa, eb, ap are refused."""
    lower: datetime | None = None
    upper: datetime | None = None
    for value in values:
        match = _DATE_BOUND.match(value)
        if match is None:
            raise InvalidSearch(
                f"{name} : date attendue (AAAA, AAAA-MM, AAAA-MM-JJ ou AAAA-MM-JJThh:mm[:ss][Z|±hh:mm]), "
                "préfixe facultatif eq, gt, ge, lt ou le.",
                field=name,
            )
        prefix = match["prefix"] or "eq"
        if prefix not in ("eq", "gt", "ge", "lt", "le"):
            raise InvalidSearch(f"{name} : préfixe non pris en charge ({prefix}).", field=name)
        try:
            start, end = _date_interval(name, match["date"], match["time"], match["zone"])
        except OverflowError:  # out of datetime's range: year 1 in Paris, or the day after 9999-12-31
            raise InvalidSearch(
                f"{name} : date hors des limites prises en charge ({match['date']}).", field=name
            ) from None
        low, high = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "lt": (None, start),
            "le": (None, end),
        }[prefix]
        if low is not None:
            lower = low if lower is None else max(lower, low)
        if high is not None:
            upper = high if upper is None else min(upper, high)
    return lower, upper


def links(search_url: str, query: SearchQuery, total: int, returned: int) -> dict[str, str]:
    """Absolute self / next / previous links repeating the parameters actually used."""

    def url(offset: int) -> str:
        params = [*query.used, ("_count", str(query.count)), ("_offset", str(offset))]
        return f"{search_url}?{urlencode(params)}"

    result = {"self": url(query.page.offset)}
    if query.count and query.page.offset + returned < total:
        result["next"] = url(query.page.offset + returned)
    if query.count and query.page.offset > 0:
        result["previous"] = url(max(0, query.page.offset - query.count))
    return result


def _empty(query: SearchQuery) -> Page[Any]:
    return Page(items=[], total=0, offset=query.page.offset, limit=query.page.limit)


def _trim(page: Page[Any], query: SearchQuery) -> Page[Any]:
    """_count=0 asks for the total only."""
    if query.count == 0:
        return Page(items=[], total=page.total, offset=page.offset, limit=0)
    return page


# --- Patient --------------------------------------------------------------------------------------------

PATIENT_PARAMS = ("identifier", "family", "given", "birthdate", "gender")


@dataclass
class PatientResults:
    page: Page[Patient]
    organisations: dict[uuid.UUID, Organisation]


async def organisations_of(
    session: AsyncSession, patients: Sequence[Patient]
) -> dict[uuid.UUID, Organisation]:
    """Organisations that assigned the patients' IPPs, in one query (their FINESS names the IPP system)."""
    ids = {local.organisation_id for patient in patients for local in patient.local_identifiers}
    return await OrganisationRepository(session).get_many(ids)


async def _patient_identifier_criteria(session: AsyncSession, value: str) -> dict[str, Any] | None:
    """Criteria for an identifier search, or None when nothing can match."""
    system, code = parse_token(value)
    code = code.strip()
    if system is None:
        # A bare value: a matricule INS if it has the shape and key of one, otherwise an IPP.
        matricule = code.replace(" ", "").upper()
        if check_nir(matricule) is None:
            return {"ins_matricule": matricule, "identity_status": IdentityStatus.QUALIFIEE}
        return {"ipp": code}
    if system in mapping.INS_SYSTEMS:
        # INS identifiers are published for qualified identities only, so only those can match.
        return {
            "ins_matricule": code.replace(" ", "").upper(),
            "ins_oid": mapping.INS_SYSTEMS[system],
            "identity_status": IdentityStatus.QUALIFIEE,
        }
    if system.startswith(mapping.IPP_SYSTEM_PREFIX):
        finess = system.removeprefix(mapping.IPP_SYSTEM_PREFIX)
        try:
            organisation = await directory_service.get_organisation_by_finess(session, finess)
        except NotFound:
            return None
        return {"ipp": code, "ipp_organisation_id": organisation.id}
    return None  # a system this server does not issue: no patient carries it


async def find_patients(session: AsyncSession, principal: Principal, query: SearchQuery) -> PatientResults:
    values = query.values
    criteria: dict[str, Any] = {}
    if "identifier" in values:
        found = await _patient_identifier_criteria(session, values["identifier"])
        if found is None:
            return PatientResults(_empty(query), {})
        criteria.update(found)
    if "family" in values:
        criteria["family"] = values["family"]
    if "given" in values:
        criteria["given"] = values["given"]
    if "birthdate" in values:
        criteria["birth_date"] = parse_date("birthdate", values["birthdate"])
    if "gender" in values:
        gender = values["gender"]
        if gender not in (*mapping.SEX_BY_GENDER, "other"):
            raise InvalidSearch("gender : valeur attendue male, female, unknown ou other.", field="gender")
        if gender == "other":  # identities carry M, F or I (indéterminé = unknown) only
            return PatientResults(_empty(query), {})
        criteria["sex"] = mapping.SEX_BY_GENDER[gender]
    page = await patient_service.search_patients(session, principal, PatientCriteria(**criteria), query.page)
    page = _trim(page, query)
    return PatientResults(page, await organisations_of(session, page.items))


async def read_patient(
    session: AsyncSession, principal: Principal, patient_id: str
) -> tuple[Patient, dict[uuid.UUID, Organisation]]:
    """Scoped and audited read (404 outside the principal's scope, as for an unknown id)."""
    access = await patient_service.get_patient(
        session, principal, resource_id(patient_id, "Patient introuvable.")
    )
    return access.patient, await organisations_of(session, [access.patient])


# --- Practitioner ---------------------------------------------------------------------------------------

PRACTITIONER_PARAMS = ("identifier", "family", "name")


def _idnps_for(value: str) -> str | None:
    system, code = parse_token(value)
    code = code.strip()
    if system == mapping.RPPS_SYSTEM or (system is None and check_rpps(code) is None):
        return idnps_from_rpps(code) if check_rpps(code) is None else None
    if system in (None, mapping.IDNPS_SYSTEM) and code.startswith("8"):
        return code  # platform-local identifiers ("LOCAL-...") are never published, hence never matched
    return None


async def find_practitioners(session: AsyncSession, query: SearchQuery) -> Page[Professional]:
    values = query.values
    idnps = None
    if "identifier" in values:
        idnps = _idnps_for(values["identifier"])
        if idnps is None:
            return _empty(query)
    page = await directory_service.list_professionals(
        session, query.page, query=values.get("name", ""), idnps=idnps, family=values.get("family")
    )
    return _trim(page, query)


async def read_practitioner(session: AsyncSession, practitioner_id: str) -> Professional:
    return await directory_service.get_professional(
        session, resource_id(practitioner_id, "Professionnel introuvable.")
    )


# --- Organization ---------------------------------------------------------------------------------------

ORGANIZATION_PARAMS = ("identifier", "name")


async def find_organizations(session: AsyncSession, query: SearchQuery) -> Page[Organisation]:
    values = query.values
    finess = None
    if "identifier" in values:
        system, finess = parse_token(values["identifier"])
        if system not in (None, mapping.FINESS_SYSTEM):
            return _empty(query)
        finess = finess.strip().upper()
    page = await directory_service.list_organisations(
        session, query.page, query=values.get("name", ""), finess=finess
    )
    return _trim(page, query)


async def read_organization(session: AsyncSession, organization_id: str) -> Organisation:
    return await directory_service.get_organisation(
        session, resource_id(organization_id, "Établissement introuvable.")
    )


def resource_id(value: str, message: str) -> uuid.UUID:
    """Resource ids are UUIDs; anything else names no resource (404, not 400/500)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(message) from None


def reference_param(value: str, resource_type: str, name: str) -> uuid.UUID:
    """A reference search value: ``Type/<id>`` (relative or absolute) or a bare id; 400 naming ``name`` otherwise."""
    found = workflow.reference_id(value, resource_type)
    if found is None and "/" not in value:
        try:
            found = uuid.UUID(value)
        except ValueError:
            found = None
    if found is None:
        raise InvalidSearch(f"{name} : référence {resource_type}/<id> attendue.", field=name)
    return found
