"""Parallel audit writers on PostgreSQL: threads, each with its own database connection,
released together by a barrier. The chain lock makes every writer see the true previous
hash, so the clinic's chain stays one unbroken line (no two rows on the same parent)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from clinic.models import AuditAction, AuditEvent
from clinic.security.audit import audit_record, audit_verify

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 16
EACH = 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real parallel writers need PostgreSQL")
def test_parallel_writers_keep_one_unbroken_chain(clinic):
    barrier = threading.Barrier(PARALLEL)
    errors: list[Exception] = []

    def run() -> None:
        try:
            barrier.wait(timeout=60)
            for _ in range(EACH):
                audit_record(action=AuditAction.VIEW, clinic=clinic, via="api", reason="parallel read")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    events = AuditEvent.objects.filter(clinic=clinic)
    assert events.count() == PARALLEL * EACH
    assert len(set(events.values_list("prev_hash", flat=True))) == PARALLEL * EACH
    assert audit_verify(clinic_id=clinic.pk) == []


def test_events_without_a_clinic_chain_among_themselves(clinic):
    first = audit_record(action=AuditAction.VIEW, via="system", reason="no clinic")
    audit_record(action=AuditAction.VIEW, clinic=clinic, via="api")
    second = audit_record(action=AuditAction.VIEW, via="system", reason="no clinic")
    assert second.prev_hash == first.hash
    assert audit_verify(clinic_id=None) == []
