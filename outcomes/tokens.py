"""Outcome link tokens: a random nonce signed with SECRET_KEY (as intake's; another salt, so an
intake token never opens a measure and the other way round)."""

from __future__ import annotations

import secrets

from django.core import signing

_signer = signing.Signer(salt="outcomes.link")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


def token_for(nonce: str) -> str:
    return _signer.sign(nonce)


def nonce_from(token: str) -> str | None:
    try:
        return _signer.unsign(token)
    except signing.BadSignature:
        return None
