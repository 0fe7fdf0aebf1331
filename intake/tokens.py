"""Intake link tokens: a random nonce, signed with SECRET_KEY.

The database stores only the nonce. A token whose signature does not verify is
rejected before any query, so guessing costs nothing but a rate-limit count.
"""

from __future__ import annotations

import secrets

from django.core import signing

_signer = signing.Signer(salt="intake.link")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


def token_for(nonce: str) -> str:
    return _signer.sign(nonce)


def nonce_from(token: str) -> str | None:
    """The nonce of a genuine token, or None for a tampered or made-up one."""
    try:
        return _signer.unsign(token)
    except signing.BadSignature:
        return None
