"""Intake link tokens (clinic.security.link_tokens, salt "intake.link")."""

from __future__ import annotations

from clinic.security.link_tokens import LinkTokens

_tokens = LinkTokens("intake.link")
new_nonce = _tokens.new_nonce
token_for = _tokens.token_for
nonce_from = _tokens.nonce_from
