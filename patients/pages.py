"""Pages a patient reaches from a message, without signing in: the unsubscribe link of every
email, and the SMS provider's inbound webhook (STOP replies). Mounted by public_urls.py."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.shortcuts import render
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from clinic.messaging.channels import InboundRejectedError, sms_backend
from clinic.messaging.outbox import unsubscribe_token_read
from clinic.models import OptOutSource
from patients.messages import patient_opt_out, sms_reply_handle
from patients.models import Patient


@csrf_exempt  # called by the SMS provider; authenticated by its request signature instead
@require_POST
def sms_inbound(request):
    try:
        inbound = sms_backend().parse_inbound(request)
    except InboundRejectedError as exc:
        return HttpResponseForbidden(str(exc), content_type="text/plain")
    answer = sms_reply_handle(from_number=inbound.from_number, body=inbound.body)
    # TwiML: our answer as the reply message; empty for a number we do not know.
    message = f"<Message>{escape(answer)}</Message>" if answer else ""
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{message}</Response>', content_type="text/xml"
    )


@csrf_exempt  # one-click unsubscribe (RFC 8058) posts from the mail client, without a CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    found = unsubscribe_token_read(token)
    patient = Patient.objects.select_related("clinic").filter(pk=found[0]).first() if found else None
    if patient is None:
        return HttpResponseNotFound("This unsubscribe link is not valid.", content_type="text/plain")
    channel = found[1]
    consenting = patient.email_consent if channel == "email" else patient.sms_consent
    if request.method == "POST" and consenting:
        patient_opt_out(patient=patient, channel=channel, source=OptOutSource.UNSUBSCRIBE_LINK)
    return render(
        request,
        "patients/unsubscribe.html",
        {"clinic": patient.clinic, "done": request.method == "POST", "already": not consenting},
    )
