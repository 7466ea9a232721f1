"""Artifacts in the browser: the viewer page and the raw content, served by validated id only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.console import queries
from roost.console.present import TEXT_KINDS, markdown
from roost.console.security import RAW_CSP
from roost.console.state import console_of
from roost.runtime.models import validate_name

if TYPE_CHECKING:
    from starlette.requests import Request

    from roost.runtime.backends import WorkBackend
    from roost.runtime.models import Artifact

__all__ = ["INLINE_VIEW_BYTES", "MARKDOWN_BYTES", "routes"]

INLINE_VIEW_BYTES = 1_000_000
"""Artifacts up to this size are shown in the viewer; larger ones are download-only."""
MARKDOWN_BYTES = 200_000
"""Markdown up to this size is rendered; a larger one is shown as text."""
MARKDOWN_KINDS = frozenset({"md", "markdown"})


async def _artifact(request: Request) -> tuple[WorkBackend, Artifact]:
    backend = await console_of(request).backend()
    kind = request.query_params.get("kind") or None
    return backend, await queries.artifact(backend, request.path_params["artifact_id"], kind)


def _claimed_owner(request: Request, art: Artifact) -> str:
    """The work id the viewer was opened for (``?work=``), else the artifact's metadata's."""
    for raw in (request.query_params.get("work", ""), art.metadata.get("work_id")):
        if isinstance(raw, str) and raw:
            try:
                return validate_name("work id", raw)
            except ValueError:
                continue
    return ""


async def artifact_view(request: Request) -> Response:
    """``GET /artifacts/{id}?kind=&work=``: metadata, owner and, for JSON/text, the content.

    The page links back to the item that produced the artifact once that item's snapshots
    are found to list it (see :func:`queries.artifact_owner`).
    """
    console = console_of(request)
    backend, art = await _artifact(request)
    text: str | None = None
    is_json = False
    rendered = None
    if art.kind in TEXT_KINDS and art.size <= INLINE_VIEW_BYTES:
        raw = (await queries.artifact_content(backend, art)).decode("utf-8", "replace")
        text = raw
        if art.kind == "json":
            try:
                text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
                is_json = True
            except ValueError:
                text = raw
        elif art.kind in MARKDOWN_KINDS and art.size <= MARKDOWN_BYTES:
            rendered = markdown(raw)
    claimed = _claimed_owner(request, art)
    owner = await queries.artifact_owner(backend, art.artifact_id, claimed) if claimed else None
    return console.render(
        request,
        "artifact.html",
        {
            "page": "work",
            "art": art,
            "text": text,
            "is_json": is_json,
            "rendered": rendered,
            "inline_limit": INLINE_VIEW_BYTES,
            "owner": owner,
            "claimed": claimed,
        },
    )


async def artifact_raw(request: Request) -> Response:
    """``GET /artifacts/{id}/raw?kind=&download=1``: the content.

    JSON and text kinds (Markdown as plain text) are served inline (unless ``download=1``);
    every other kind is an attachment of type ``application/octet-stream``. Always with
    ``nosniff`` and a sandbox Content-Security-Policy.
    """
    backend, art = await _artifact(request)
    content = await queries.artifact_content(backend, art)
    download = request.query_params.get("download") == "1"
    inline = art.kind in TEXT_KINDS and not download
    media = TEXT_KINDS[art.kind] if inline else "application/octet-stream"
    name = f"{art.artifact_id[:16]}.{art.kind}"
    disposition = f'{"inline" if inline else "attachment"}; filename="{name}"'
    return Response(
        content,
        media_type=media,
        headers={
            "content-disposition": disposition,
            "content-security-policy": RAW_CSP,
            "x-content-type-options": "nosniff",
        },
    )


def routes() -> list[BaseRoute]:
    """The artifact viewer's routes."""
    return [
        Route("/artifacts/{artifact_id}/raw", artifact_raw),
        Route("/artifacts/{artifact_id}", artifact_view),
    ]
