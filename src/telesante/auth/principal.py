"""Who is acting: the authenticated account, its professional identity and its active memberships."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from telesante.directory.models import ADMIN_ROLES, CLINICAL_ROLES, ROLE_LABELS, SECRETARIAT_ROLES, Role


@dataclass(frozen=True)
class Grant:
    role: Role
    organisation_id: uuid.UUID | None
    organisation_name: str = ""
    service_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    email: str
    professional_id: uuid.UUID
    display_name: str
    grants: tuple[Grant, ...] = ()
    auth_method: str = "session"  # session | token | system
    extras: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    @property
    def is_regional_admin(self) -> bool:
        return self.has_role(Role.REGIONAL_ADMIN)

    @property
    def is_admin(self) -> bool:
        return any(g.role in ADMIN_ROLES for g in self.grants)

    @property
    def clinical_organisation_ids(self) -> frozenset[uuid.UUID]:
        """Organisations through which this principal may see patients."""
        return frozenset(
            g.organisation_id
            for g in self.grants
            if g.role in CLINICAL_ROLES and g.organisation_id is not None
        )

    @property
    def is_clinician(self) -> bool:
        return bool(self.clinical_organisation_ids)

    @property
    def secretariat_organisation_ids(self) -> frozenset[uuid.UUID]:
        """Organisations whose medical secretariat this principal is (identity and agenda, no clinical content)."""
        return frozenset(
            g.organisation_id
            for g in self.grants
            if g.role in SECRETARIAT_ROLES and g.organisation_id is not None
        )

    @property
    def identity_organisation_ids(self) -> frozenset[uuid.UUID]:
        """Organisations through which this principal may see patients' identity and appointments: its clinical
        ones and those whose secretariat it is."""
        return self.clinical_organisation_ids | self.secretariat_organisation_ids

    def admin_organisation_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(
            g.organisation_id
            for g in self.grants
            if g.role == Role.ORG_ADMIN and g.organisation_id is not None
        )

    def can_administer(self, organisation_id: uuid.UUID | None) -> bool:
        if self.is_regional_admin:
            return True
        return organisation_id is not None and organisation_id in self.admin_organisation_ids()

    @property
    def organisation_names(self) -> list[str]:
        seen: list[str] = []
        for g in self.grants:
            if g.organisation_name and g.organisation_name not in seen:
                seen.append(g.organisation_name)
        return seen

    @property
    def role_labels(self) -> list[str]:
        return sorted({ROLE_LABELS[g.role] for g in self.grants})
