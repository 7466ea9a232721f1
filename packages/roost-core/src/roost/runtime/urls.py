"""The one rule for showing a configured URL: never with its credentials.

Every message, log line and page that shows a URL from the settings (a backend URL,
an artifact store URL) shows :func:`redact_url` of it.
"""

from __future__ import annotations

__all__ = ["redact_url"]

MASK = "***"
"""What stands in place of a credential."""

_SECRET_WORDS = ("password", "secret", "token")


def redact_url(url: str) -> str:
    """The URL with its credentials replaced by ``***``, for messages, logs and pages.

    - The user info becomes ``***@``: ``db://user:pw@h:6379/0`` -> ``db://***@h:6379/0``,
      host lists included (``db+ha://:pw@h1:26379,h2:26379/svc`` ->
      ``db+ha://***@h1:26379,...``).
      Everything between ``://`` and the last ``@`` counts as user info, so a password with
      an unencoded ``/``, ``?`` or ``#`` is hidden too (at the price of hiding more than
      needed when a path or query holds an ``@``).
    - The value of every query option whose name contains ``password``, ``secret`` or
      ``token`` becomes ``***`` (``?sentinel_password=...``).

    It never raises: a URL it cannot read is shown with the same rules.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority_end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@") if authority_end > 0 else -1
    if at >= 0:
        rest = f"{MASK}@{rest[at + 1 :]}"
    before, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        rest = f"{before}?{_redact_query(query)}{hash_}{fragment}"
    return f"{scheme}{sep}{rest}"


def _redact_query(query: str) -> str:
    pairs: list[str] = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        if eq and any(word in name.lower() for word in _SECRET_WORDS):
            pair = f"{name}={MASK}"
        pairs.append(pair)
    return "&".join(pairs)
