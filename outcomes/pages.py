"""The patient page to fill a measure: /outcomes/<token>/ (no login; the signed token is the key).

One page per measure, plain HTML form, no script needed. Blank items are allowed: the page
asks once whether to send with blanks, then stores the response as incomplete (not scored).
Wrong tokens count against the address with intake's limit (same cache key), so scanning one
kind of link does not reset the other's count.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from intake.pages import UNAVAILABLE, _note_miss, _private, _too_many_misses, _unavailable
from intake.services import intake_settings_for
from outcomes.measures import clean_answers, measure_named, score
from outcomes.models import OutcomeLink
from outcomes.services import LinkUnavailableError, measure_form, outcome_link_for_token, outcome_submit
from outcomes.tokens import nonce_from

UNAVAILABLE_HERE = UNAVAILABLE | {
    "submitted": ("Thank you, this was already sent", "The clinic has your answers. Nothing else is needed."),
}
PSFS_ROWS = 5


def _link_or_page(request, token: str, *, allow_submitted: bool = False):
    if _too_many_misses(request):
        return None, _unavailable(request, 429, "Too many attempts", "Please wait a few minutes and try again.")
    nonce = nonce_from(token)
    if nonce is not None:
        try:
            return outcome_link_for_token(nonce), None
        except OutcomeLink.DoesNotExist:
            pass
        except LinkUnavailableError as exc:
            found = OutcomeLink.objects.select_related("clinic", "patient").get(nonce=nonce)
            if allow_submitted and exc.reason == "submitted":
                return found, None
            title, message = UNAVAILABLE_HERE.get(exc.reason, UNAVAILABLE_HERE["revoked"])
            return None, _unavailable(request, 410, title, message, clinic=found.clinic)
    _note_miss(request)
    return None, _unavailable(
        request, 404, "We can't find this link", "Check that you copied the whole link from your message."
    )


def _raw_from_post(measure, post) -> dict:
    if measure.scoring == "mean_of_activities":
        return {
            "activities": [
                {"name": post.get(f"activity_{i}", ""), "rating": post.get(f"rating_{i}", "")}
                for i in range(1, PSFS_ROWS + 1)
            ]
        }
    return {item.code: post.get(item.code, "") for item in measure.items}


def _text(value) -> str:
    """A stored answer as the form's string: 0 is an answer ("0"), only None is blank."""
    return "" if value is None else str(value)


def _context(link: OutcomeLink, values: dict, errors: dict) -> dict:
    measure = measure_named(link.measure)
    instructions, items = measure_form(clinic=link.clinic, measure=measure)
    fields = [
        {"item": item, "id": f"q-{item.code}", "value": _text(values.get(item.code)),
         "errors": errors.get(item.code, []), "scale": measure.scoring == "single"}
        for item in items
    ]  # fmt: skip
    activities = (values.get("activities") or []) + [{}] * PSFS_ROWS
    rows = [
        {"n": i, "name": activities[i - 1].get("name") or "", "rating": _text(activities[i - 1].get("rating")),
         "errors": errors.get(f"activity_{i}", []) + errors.get(f"rating_{i}", [])}
        for i in range(1, PSFS_ROWS + 1)
    ]  # fmt: skip
    return {
        "link": link, "clinic": link.clinic, "branding": intake_settings_for(link.clinic), "measure": measure,
        "title": measure.title, "instructions": instructions, "fields": fields, "activities": rows,
        "ratings": [str(n) for n in range(11)],
        "errors": [{"id": f"q-{code}", "message": msgs[0]} for code, msgs in errors.items()],
    }  # fmt: skip


def _missing_links(measure, missing: list[str]) -> list[dict]:
    """Blank items as links to their questions on the page."""
    texts = {item.code: item.text for item in measure.items}
    links = []
    for code in missing:
        if code.startswith(("rating_", "activity_")):
            number = code.rsplit("_", 1)[1]
            links.append({"id": f"q-activity_{number}", "text": f"Activity {number}"})
        else:
            position = measure.item_codes.index(code) + 1
            links.append({"id": f"q-{code}", "text": f"Question {position}" if len(texts) > 1 else texts[code]})
    return links


@require_http_methods(["GET", "POST"])
def fill(request, token: str):
    link, refusal = _link_or_page(request, token)
    if refusal is not None:
        return refusal
    measure = measure_named(link.measure)
    values: dict = {}
    errors: dict = {}
    blanks = 0
    missing: list[str] = []
    if request.method == "POST":
        raw = _raw_from_post(measure, request.POST)
        try:
            cleaned = clean_answers(measure, raw)
        except ValidationError as exc:
            errors, values = exc.message_dict, raw
        else:
            result = score(measure, cleaned)
            values = cleaned
            if result.complete or request.POST.get("send_with_blanks") == "yes":
                try:
                    outcome_submit(link=link, answers=cleaned)
                except LinkUnavailableError as exc:
                    title, message = UNAVAILABLE_HERE.get(exc.reason, UNAVAILABLE_HERE["revoked"])
                    return _unavailable(request, 410, title, message, clinic=link.clinic)
                return redirect("outcomes:thanks", token=token)
            blanks = len(result.missing)
            missing = result.missing
    try:
        context = _context(link, values, errors) | {"blanks": blanks, "missing": _missing_links(measure, missing)}
    except ValidationError:  # the clinic removed the licensed wording after sending the link
        return _unavailable(
            request, 410, "This form is not available", "Please contact the clinic.", clinic=link.clinic
        )
    status = 400 if errors or blanks else 200
    return _private(render(request, "outcomes/fill.html", context, status=status))


@require_http_methods(["GET"])
def thanks(request, token: str):
    link, refusal = _link_or_page(request, token, allow_submitted=True)
    if refusal is not None:
        return refusal
    if link.status != "submitted":
        return redirect("outcomes:fill", token=token)
    context = {"clinic": link.clinic, "branding": intake_settings_for(link.clinic), "title": "Thank you"}
    return _private(render(request, "outcomes/thanks.html", context))
