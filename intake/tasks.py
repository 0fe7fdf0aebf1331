from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from intake.models import IntakeLink, IntakeLinkStatus


@shared_task(autoretry_for=(OSError,), retry_backoff=60, retry_kwargs={"max_retries": 5})
def send_intake_link(link_id: int) -> bool:
    """Email the intake link. Re-checks the link: a link revoked or used meanwhile is not sent."""
    link = IntakeLink.objects.select_related("clinic", "patient").filter(pk=link_id).first()
    if link is None or link.status != IntakeLinkStatus.OPEN or not link.patient.email:
        return False
    context = {"link": link, "clinic": link.clinic, "patient": link.patient, "url": link.url}
    send_mail(
        subject=f"{link.clinic.name}: a few questions before your visit",
        message=render_to_string("intake/email/link.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[link.patient.email],
    )
    return True
