"""Domain errors: a status, a French message for users, and optionally the field at fault."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code: int = 400
    code: str = "erreur"
    title: str = "Requête invalide"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class InvalidInput(DomainError):
    status_code = 422
    code = "donnees-invalides"
    title = "Données invalides"


class NotFound(DomainError):
    status_code = 404
    code = "introuvable"
    title = "Introuvable"

    def __init__(self, message: str = "Ressource introuvable.", **kwargs: Any):
        super().__init__(message, **kwargs)


class Forbidden(DomainError):
    status_code = 403
    code = "interdit"
    title = "Accès refusé"

    def __init__(self, message: str = "Vous n'avez pas les droits nécessaires.", **kwargs: Any):
        super().__init__(message, **kwargs)


class NotAuthenticated(DomainError):
    status_code = 401
    code = "non-authentifie"
    title = "Authentification requise"

    def __init__(self, message: str = "Authentification requise.", **kwargs: Any):
        super().__init__(message, **kwargs)


class Conflict(DomainError):
    status_code = 409
    code = "conflit"
    title = "Conflit"


class TooManyRequests(DomainError):
    status_code = 429
    code = "trop-de-tentatives"
    title = "Trop de tentatives"
