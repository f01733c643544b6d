"""Enumerate the application's routes (FastAPI nests included routers)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.routing import APIRoute


def iter_routes(app) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, prefixes included."""

    def walk(routes, prefix: str):
        for route in routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, prefix + route.path
            elif hasattr(route, "original_router") and hasattr(route, "include_context"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    yield from walk(app.router.routes, "")
