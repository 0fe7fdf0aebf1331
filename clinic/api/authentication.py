"""API keys: `Authorization: Bearer <key>`.

Kept apart from clinic.api.conventions because DRF imports authentication classes while
`rest_framework.views` is still loading.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from clinic.models import ApiKey

# --- scopes ---------------------------------------------------------------------------

SCOPE_RESOURCES = (
    "clinic",
    "patients",
    "appointments",
    "intake",
    "clinical",
    "catalogs",
    "messages",
    "webhooks",
    "exports",
)
ALL_SCOPES = tuple(f"{resource}:{mode}" for resource in SCOPE_RESOURCES for mode in ("read", "write"))

# --- authentication -------------------------------------------------------------------

KEY_PREFIX = "ck_"


def api_key_digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_generate() -> tuple[str, str]:
    """Return (raw key, prefix). The raw key is shown once and never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, raw[: len(KEY_PREFIX) + 8]


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key = ApiKey.objects.select_related("clinic").filter(digest=api_key_digest(raw)).first()
        if key is None or not key.is_active or not key.clinic.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            # Written at most once a minute so hot keys don't turn every read into a write.
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        # For the request log (clinic.observability.logs), which sees the Django request only.
        request._request.api_key_id = key.pk
        return AnonymousUser(), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
