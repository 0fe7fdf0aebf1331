"""Replies patients send to our SMS, beyond opt-out words: domains register what a reply
word means to them (sessions: Y/YES/C confirm the visit, N/NO cancel it) from their
AppConfig.ready(); `patients.messages.sms_reply_handle` answers opt-out words itself first.

A handler gets the patients the number belongs to and the reply's first word, upper-case,
and returns the text to answer with, or None when the word is not its concern.
"""

from __future__ import annotations

from collections.abc import Callable

SmsReplyHandler = Callable[[list, str], "str | None"]
_HANDLERS: list[SmsReplyHandler] = []


def sms_reply_handler_register(handler: SmsReplyHandler) -> None:
    if handler not in _HANDLERS:
        _HANDLERS.append(handler)


def sms_reply_word(body: str) -> str:
    """The reply's meaning-bearing word: 'yes!' -> 'YES', ' Y ' -> 'Y'; '' for an empty reply."""
    words = body.strip().split()
    return words[0].strip(".!,;:").upper() if words else ""


def sms_reply_dispatch(*, patients: list, word: str) -> str | None:
    """The first registered handler's answer to `word`, or None when none understood it."""
    for handler in _HANDLERS:
        answer = handler(patients, word)
        if answer is not None:
            return answer
    return None
