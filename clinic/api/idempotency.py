"""`Idempotency-Key` on POST: a retried create replays the first response instead of writing twice.

A viewset opts in by listing the mixin first:

    class PatientViewSet(IdempotentCreateMixin, ClinicScopedMixin, viewsets.ModelViewSet):
        ...

and a custom POST action by wrapping its body:

    @action(detail=False, methods=["post"])
    def book(self, request):
        return idempotent(request, lambda: self._book(request))

Rules, per caller (API key or staff user) and clinic:
- no header: the request runs as usual;
- first use of a key: the request runs; a 2xx response is stored with the key in the same
  transaction as the rows it wrote, a 4xx or an exception stores nothing (fix and retry);
- same key, same method, path and body, after success: the stored response is replayed
  (`Idempotent-Replayed: true`) and nothing runs;
- same key, different request: 422;
- same key while the first request is still running: 409 (retry later).

The claim is a committed row whose unique constraint decides the race, so two concurrent
requests with one key cannot both run. Records are kept `IDEMPOTENCY_TTL` (24 h) and removed by
`clinic.tasks.delete_expired_idempotency_records` (beat, hourly).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from clinic.api.conventions import Conflict, Unprocessable
from clinic.models import ApiKey, IdempotencyRecord, IdempotencyStatus

HEADER = "Idempotency-Key"
IDEMPOTENCY_TTL = dt.timedelta(hours=24)
# A claim older than this belongs to a request that died mid-way (worker killed); a retry may take it over.
ABANDONED_AFTER = dt.timedelta(minutes=5)


def _principal(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
    return f"user:{request.user.pk}"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder, separators=(",", ":"))
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def _claim(request, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Insert the in-progress claim, or answer from the record that already holds the key."""
    clinic, principal = request.clinic, _principal(request)
    for _ in range(2):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    clinic=clinic,
                    principal=principal,
                    key=key,
                    method=request.method,
                    path=request.path[:500],
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + IDEMPOTENCY_TTL,
                )
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(clinic=clinic, principal=principal, key=key).first()
        if record is None:
            continue  # deleted between our insert and read (a failed first attempt): claim again
        if record.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=record.pk, expires_at=record.expires_at).delete()
            continue
        if record.fingerprint != fingerprint:
            raise Unprocessable(f"This {HEADER} was already used for a different request.")
        if record.status == IdempotencyStatus.COMPLETED:
            return Response(
                record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"}
            )
        taken_over = IdempotencyRecord.objects.filter(
            pk=record.pk, status=IdempotencyStatus.IN_PROGRESS, created_at__lt=now - ABANDONED_AFTER
        ).update(created_at=now)
        if taken_over:
            return record
        raise Conflict(f"A request with this {HEADER} is still being processed; retry it later.")
    raise Conflict(f"A request with this {HEADER} is still being processed; retry it later.")


def idempotent(request, handler: Callable[[], Response]) -> Response:
    """Run `handler` at most once per (caller, Idempotency-Key); see the module docstring."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise exceptions.ValidationError({HEADER: ["Must be 1 to 255 printable ASCII characters."]})
    claimed = _claim(request, key, _fingerprint(request))
    if isinstance(claimed, Response):
        return claimed
    try:
        with transaction.atomic():
            response = handler()
            if not 200 <= response.status_code < 300:
                raise _NotStored(response)
            body = json.loads(json.dumps(response.data, cls=JSONEncoder))
            IdempotencyRecord.objects.filter(pk=claimed.pk).update(
                status=IdempotencyStatus.COMPLETED, response_status=response.status_code, response_body=body
            )
    except _NotStored as refused:
        IdempotencyRecord.objects.filter(pk=claimed.pk).delete()
        return refused.response
    except BaseException:
        IdempotencyRecord.objects.filter(pk=claimed.pk).delete()
        raise
    return response


class _NotStored(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, response: Response):
        self.response = response


class IdempotentCreateMixin:
    """Viewset mixin: `create` (POST on the list URL) honours `Idempotency-Key`.

    The create itself comes from a class after the mixin (DRF's CreateModelMixin with
    `perform_create`, or a base like `_ImportSubmit`). A viewset that writes its own `create`
    wraps the body in `idempotent()` and lists "create" in `idempotent_actions` instead.
    """

    idempotent_actions = ("create",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "create" in cls.__dict__:
            # It would run instead of the mixin's create: retries would silently write twice.
            raise TypeError(
                f"{cls.__name__} defines create() and lists IdempotentCreateMixin, which its create "
                "overrides; wrap the body in idempotent(request, ...) instead of using the mixin."
            )

    def create(self, request, *args, **kwargs):
        return idempotent(request, lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs))


def idempotency_records_delete_expired(*, now: dt.datetime | None = None) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
