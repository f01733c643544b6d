"""Enumerate the application's routes (FastAPI nests included routers)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.routing import APIRoute


def iter_api_routes(app) -> Iterator[tuple[str, APIRoute]]:
    """(prefix, route) of every API route, included routers walked."""

    def walk(routes, prefix: str):
        for route in routes:
            if isinstance(route, APIRoute):
                yield prefix, route
            elif hasattr(route, "original_router") and hasattr(route, "include_context"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    yield from walk(app.router.routes, "")


def iter_routes(app) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, prefixes included."""
    for prefix, route in iter_api_routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            yield method, prefix + route.path
