"""Tokens for links sent to patients (intake, outcome measures): a random nonce signed with
SECRET_KEY under a salt of its own, so one kind of link never opens another.

The database stores only the nonce. A token whose signature does not verify is rejected
before any query, so guessing costs nothing but a rate-limit count.
"""

from __future__ import annotations

import secrets

from django.core import signing


class LinkTokens:
    def __init__(self, salt: str):
        self._signer = signing.Signer(salt=salt)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)  # 192 random bits

    def token_for(self, nonce: str) -> str:
        return self._signer.sign(nonce)

    def nonce_from(self, token: str) -> str | None:
        """The nonce of a genuine token, or None for a tampered or made-up one."""
        try:
            return self._signer.unsign(token)
        except signing.BadSignature:
            return None
