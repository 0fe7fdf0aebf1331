"""Typed readers for environment variables.

Every setting that comes from the environment goes through one of these, so a
bad value stops start-up with one line that names the variable instead of a
traceback from deep inside a library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from clinic.security.addresses import TrustedProxies

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvError(ImproperlyConfigured):
    """A variable is set to a value the application cannot use."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(f"{name}: expected a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"{name}: expected a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = (_raw(name) or default).lower()
    if value not in choices:
        raise EnvError(f"{name}: expected one of {', '.join(sorted(choices))}, got {value!r}")
    return value


_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}


def env_database(name: str, default: str) -> dict:
    url = _raw(name) or default
    scheme = urlsplit(url).scheme
    if scheme not in _DB_SCHEMES:
        raise EnvError(f"{name}: expected postgres://user@host:port/dbname or sqlite:///path, got {url!r}")
    try:
        config = dj_database_url.parse(url)
    except (ValueError, KeyError) as exc:
        raise EnvError(f"{name}: cannot parse {url!r} ({exc})") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise EnvError(f"{name}: no database name in {url!r}")
    if config["ENGINE"] == "django.db.backends.postgresql" and config.get("PORT") not in ("", None):
        try:
            int(config["PORT"])
        except ValueError:
            raise EnvError(f"{name}: port is not a number in {url!r}") from None
    return config


def _redis_part(name: str, url: str, part: str, schemes: set[str]) -> int:
    parts = urlsplit(part.strip())
    if parts.scheme not in schemes or not parts.hostname:
        raise EnvError(f"{name}: expected redis://host:port/db or sentinel://host:port/db[;...], got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        raise EnvError(f"{name}: port is not a number in {url!r}") from None
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise EnvError(f"{name}: database must be a number in {url!r}")
    return int(db or 0)


def env_redis_url(name: str) -> str | None:
    """A redis://, rediss:// or sentinel:// URL, or None when unset (the embedded broker is used).

    Sentinel: `sentinel://[:password@]host:26379/db`, several sentinels joined by `;` (the form
    Celery reads); the master's name is REDIS_SENTINEL_MASTER."""
    url = _raw(name)
    if not url:
        return None
    if url.startswith("sentinel://"):
        dbs = {_redis_part(name, url, part, {"sentinel"}) for part in url.split(";")}
        if len(dbs) > 1:
            raise EnvError(f"{name}: the sentinels name different databases in {url!r}")
    else:
        _redis_part(name, url, url, {"redis", "rediss"})
    return url


def redis_database(url: str) -> int:
    """The database number of a URL env_redis_url accepted (0 when it names none)."""
    return int(urlsplit(url.split(";")[0]).path.lstrip("/") or 0)


def redis_url_with_database(url: str, db: int) -> str:
    """The same server(s) as `url`, database `db` (each sentinel of a `;` list)."""
    return ";".join(urlsplit(part)._replace(path=f"/{db}").geturl() for part in url.split(";"))


def env_trusted_proxies(name: str):
    """TRUSTED_PROXIES: empty (none), a hop count, or comma-separated addresses/networks."""
    value = _raw(name) or ""
    try:
        return TrustedProxies.parse(value)
    except ValueError:
        raise EnvError(
            f"{name}: expected a number of proxies (1) or addresses/networks (10.0.0.0/8,192.168.1.7), got {value!r}"
        ) from None


def load_settings_or_exit() -> None:
    """Import the settings module now; on a bad variable print one line and exit.

    Entry points (manage.py, wsgi, the Celery app) call this so that a typo in
    the environment reads as a configuration error, not a stack trace.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - forces the lazy settings to load
    except EnvError as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"configuration error: {line}\n")
        raise SystemExit(2) from None


BASE_DIR = Path(__file__).resolve().parent.parent
