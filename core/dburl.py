"""Storage URLs as users write them (``storage.url``): the password never travels with one.

Pure functions, used by core/config.py (validation) and store/backend.py (opening), so every message that
names a store says the same thing and never shows a secret: libpq reads the password from ``PGPASSWORD``,
``~/.pgpass`` or the other ``PG*`` environment variables, never from config.yaml.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("sqlite", "postgresql", "postgres")


def redact(url: str) -> str:
    """``url`` with any password taken out (``postgresql://user:secret@host/db`` → ``postgresql://user@host/db``)
    and ``password=`` options dropped; a plain path is returned as it is."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = "&".join(q for q in parts.query.split("&") if q and not q.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_problem(url: str) -> str | None:
    """Why ``url`` must not be used as written (it carries a password), or None."""
    parts = urlsplit(url)
    try:
        inline = parts.password is not None
    except ValueError:
        inline = False
    if not inline and not any(q.lower().startswith("password=") for q in parts.query.split("&")):
        return None
    return (
        f"the storage URL {redact(url)} contains a password: leave it out and set PGPASSWORD, a ~/.pgpass "
        "entry or the other PG* environment variables (libpq reads them), so it is never in config.yaml or a log"
    )


def scheme_of(url: str) -> str:
    """The URL's scheme in lower case ("" for a plain path)."""
    return url.split("://", 1)[0].lower() if "://" in url else ""
