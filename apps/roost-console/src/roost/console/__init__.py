"""Roost's local web console: live work, snapshots, events, failures, artifacts, actions.

Entry points (what ``roost ui`` calls)::

    from roost.console import serve, create_app

    serve(settings, host="127.0.0.1", port=8766, token=None, open_browser=False)
    app = create_app(backend_or_settings, token=None, allowed_hosts=None, port=None)

- :func:`serve` blocks, running uvicorn until Ctrl-C. It refuses a non-loopback ``host``
  without ``token`` (:class:`~roost.runtime.errors.BadInput`) and reports a port in use as
  :class:`~roost.runtime.errors.RoostError`, both before anything starts; it prints the URL
  (with ``?token=`` when there is one) to stderr once it listens.
- :func:`create_app` returns the Starlette app, to serve some other way or to test.
- :func:`serve_in_thread` serves in a background thread and yields the base URL.
- :func:`check_bind` and :func:`new_token` let a CLI validate flags and make a token.

Pages: ``/`` overview, ``/work`` list (``state``, ``engine``, ``q``, ``cursor``),
``/work/{id}`` detail with its timeline, ``/events`` (``type``, ``work_id``), ``/failed``,
``/artifacts/{id}`` viewer and ``/artifacts/{id}/raw`` content, ``/login``; the forms
``POST /actions/{cancel|retry|replay}/{id}`` and ``POST /actions/bulk``; and the fragments
their live regions reload, ``/fragments/{overview,work,failed,timeline/{id}}``.

JSON API (``GET`` unless noted; errors are ``{"error": ..., "kind": ...}``):
``/api/health``, ``/api/overview``, ``/api/counts``, ``/api/stats?minutes=``,
``/api/workers``, ``/api/work?state=&engine=&q=&limit=&cursor=``, ``/api/work/{id}``,
``/api/versions/{id}``, ``/api/events?work_id=&type=&after=&limit=``, ``/api/dead``,
``/api/failed``, ``/api/artifacts/{id}?kind=``, ``/api/csrf``, ``/api/stream?work_id=&after=``
(server-sent events), and ``POST /api/cancel/{id}``, ``POST /api/retry/{id}``,
``POST /api/replay/{id}`` (body ``{"version": null|N, "as_new": false}``),
``POST /api/bulk/{cancel|retry}`` (body ``{"work_ids": [...]}`` or ``{"state": ...,
"engine": ...}``).

Security model: see :mod:`roost.console.security`.
"""

from roost.console.app import create_app
from roost.console.security import new_token
from roost.console.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    check_bind,
    console_url,
    serve,
    serve_in_thread,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "check_bind",
    "console_url",
    "create_app",
    "new_token",
    "serve",
    "serve_in_thread",
]
