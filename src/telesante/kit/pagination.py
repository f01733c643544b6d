"""Offset pagination shared by the JSON API, the HTML pages and the FHIR facade."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_OFFSET = 1_000_000  # beyond, databases overflow (SQLite's 64-bit integers) and no user pages that far

# The offset query parameter of every paged route: bounded, so that a huge value is a 422, never a 500.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@dataclass(frozen=True)
class PageRequest:
    offset: int = 0
    limit: int = 20

    def __post_init__(self):
        object.__setattr__(self, "offset", max(0, min(MAX_OFFSET, self.offset)))
        object.__setattr__(self, "limit", max(1, min(MAX_PAGE_SIZE, self.limit)))


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int
