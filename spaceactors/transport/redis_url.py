"""Redis URLs as they may be shown: never with their password."""

from __future__ import annotations


def redacted(url: str) -> str:
    """`url` without its password (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
