"""Patient-facing intake pages: one section per page, a review page, a thank-you page.

No login: the signed token in the URL is the patient's key. Pages are plain HTML
forms (a few lines of optional script only hide questions that don't apply), are
never cached, and send a Referer only to this site so the token does not leak to others.
"""

from __future__ import annotations

import json
from functools import wraps

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from clinic import degrade
from clinic.security.addresses import client_ip
from intake.definition import REQUIRED_MESSAGE, Form, Question, QuestionType, Section, body_regions
from intake.messages import urgent_advice
from intake.models import FlagSeverity, IntakeLink, IntakeLinkStatus, PatientFlag
from intake.services import (
    LinkUnavailableError,
    intake_draft_save,
    intake_link_for_token,
    intake_settings_for,
    intake_submit,
)
from intake.tokens import nonce_from
from treatments.models import Side

# Token guessing: after this many unknown or tampered tokens from one address within
# the window, every intake page answers 429 to that address until the window ends.
MISS_LIMIT = 10
MISS_WINDOW_SECONDS = 15 * 60

UNAVAILABLE = {
    "expired": ("This link has expired", "Please ask the clinic to send you a new link."),
    "submitted": ("This form was already sent", "Thank you: the clinic has your answers. Nothing else is needed."),
    "revoked": ("This link is no longer active", "Please contact the clinic if you still need to fill in the form."),
}


def _miss_key(request: HttpRequest) -> str:
    return f"intake:token-miss:{client_ip(request) or 'unknown'}"


def _note_miss(request: HttpRequest) -> None:
    if not degrade.CACHE.usable():
        return
    key = _miss_key(request)
    try:
        cache.add(key, 0, MISS_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, MISS_WINDOW_SECONDS)
    except degrade.CACHE_ERRORS as exc:
        degrade.CACHE.unavailable(exc)


def _too_many_misses(request: HttpRequest) -> bool:
    """With the cache down the limit fails open: tokens are unguessable, the limit only slows scans."""
    if not degrade.CACHE.usable():
        degrade.CACHE.unavailable()
        return False
    try:
        return (cache.get(_miss_key(request)) or 0) >= MISS_LIMIT
    except degrade.CACHE_ERRORS as exc:
        degrade.CACHE.unavailable(exc)
        return False


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    # Same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on the
    # form posts and CSRF protection refuses them. The token never leaves the site either way.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _unavailable(request, status: int, title: str, message: str, clinic=None) -> HttpResponse:
    context = {"title": title, "message": message, "clinic": clinic}
    if clinic is not None:
        context["branding"] = intake_settings_for(clinic)
    return _private(render(request, "intake/unavailable.html", context, status=status))


def with_link(view=None, *, allow_submitted: bool = False):
    """Resolve the token to a link, or answer 404 / 410 / 429 with a page that names no patient."""

    def decorator(func):
        @wraps(func)
        def wrapper(request, token: str, *args, **kwargs):
            if _too_many_misses(request):
                return _unavailable(request, 429, "Too many attempts", "Please wait a few minutes and try again.")
            nonce = nonce_from(token)
            link = None
            if nonce is not None:
                try:
                    link = intake_link_for_token(nonce)
                except IntakeLink.DoesNotExist:
                    link = None
                except LinkUnavailableError as exc:
                    found = IntakeLink.objects.select_related("clinic", "patient", "questionnaire").get(nonce=nonce)
                    if not (allow_submitted and exc.reason == IntakeLinkStatus.SUBMITTED):
                        title, message = UNAVAILABLE[exc.reason]
                        return _unavailable(request, 410, title, message, clinic=found.clinic)
                    link = found
            if link is None:
                _note_miss(request)
                return _unavailable(
                    request, 404, "We can't find this link", "Check that you copied the whole link from your message."
                )
            request.intake_link = link
            return _private(func(request, link, *args, **kwargs))

        return wrapper

    return decorator(view) if view else decorator


# --- form <-> answers -----------------------------------------------------------------


def _raw_from_post(section: Section, post) -> dict:
    raw: dict = {}
    for question in section.questions:
        if question.type == QuestionType.MULTI_CHOICE:
            raw[question.code] = post.getlist(question.code)
        elif question.type == QuestionType.BODY_MAP:
            raw[question.code] = [
                {"region": region, "side": post.get(f"{question.code}.{region}")}
                for region in question.regions
                if post.get(f"{question.code}.{region}")
            ]
        else:
            raw[question.code] = post.get(question.code, "")
    return raw


def _form_value(question: Question, value):
    """A stored answer as the strings the form inputs hold."""
    if value is None:
        return [] if question.type in (QuestionType.MULTI_CHOICE,) else ({} if question.type == "body_map" else "")
    if question.type == QuestionType.YES_NO:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)
    if question.type == QuestionType.BODY_MAP:
        if isinstance(value, list):
            return {e.get("region"): e.get("side") for e in value if isinstance(e, dict)}
        return {}
    if question.type == QuestionType.MULTI_CHOICE:
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return str(value)


def _fields(section: Section, values: dict, errors: dict) -> list[dict]:
    regions = body_regions()
    fields = []
    for question in section.questions:
        value = _form_value(question, values.get(question.code))
        field = {
            "q": question,
            "id": f"q-{question.code}",
            "value": value,
            "errors": errors.get(question.code, []),
            "show_if": json.dumps(
                [{"question": c.question, "operator": c.operator, "value": c.value} for c in question.enable_when]
            )
            if question.enable_when
            else "",
        }
        if question.enable_when:
            parents = {c.question for c in question.enable_when}
            field["depends_on_here"] = any(q.code in parents for q in section.questions)
        if question.type == QuestionType.SCALE:
            field["choices"] = [str(n) for n in range(11)]
        if question.type == QuestionType.YES_NO:
            field["choices"] = [("yes", "Yes"), ("no", "No")]
        if question.type == QuestionType.BODY_MAP:
            field["regions"] = [
                {"code": r, "name": regions[r], "id": f"q-{question.code}-{r}", "side": value.get(r, "")}
                for r in question.regions
            ]
            field["sides"] = [("", "No pain"), *Side.choices] if question.code == "pain_regions" else [
                ("", "Not here"), *Side.choices
            ]  # fmt: skip
        fields.append(field)
    return fields


def _steps(form: Form, answers: dict) -> list[Section]:
    """The sections asked with these answers, in order (where Continue and Back lead)."""
    return form.enabled_sections(answers)


def _numbered(form: Form) -> list[Section]:
    """The sections asked whatever the answers: what the start page promises and the progress bar counts.

    A section asked only after a particular answer (pain travelling down the leg) is a
    follow-up of the section before it and shares its number, so the total the patient was
    promised never changes while they fill the form.
    """
    return form.enabled_sections({})


def _progress(form: Form, current: Section) -> dict:
    numbered = _numbered(form)
    index = form.sections.index(current)
    step = sum(1 for s in numbered if form.sections.index(s) <= index)
    return {"step": max(step, 1), "total": len(numbered), "follow_up": current not in numbered}


def _first_incomplete(form: Form, answers: dict) -> Section | None:
    for section in _steps(form, answers):
        try:
            form.clean({q.code: answers.get(q.code) for q in section.questions}, sections=[section], context=answers)
        except ValidationError:
            return section
    return None


def _section_url(link: IntakeLink, section: Section) -> str:
    return reverse("intake:section", args=[link.token, section.code])


def _base_context(link: IntakeLink) -> dict:
    return {
        "link": link,
        "clinic": link.clinic,
        "branding": intake_settings_for(link.clinic),
        "form": link.questionnaire.form,
    }


# --- pages ----------------------------------------------------------------------------


@require_http_methods(["GET"])
@with_link
def start(request, link: IntakeLink):
    form = link.questionnaire.form
    resume = _first_incomplete(form, link.draft_answers)
    next_url = _section_url(link, resume) if resume else reverse("intake:review", args=[link.token])
    context = _base_context(link) | {
        "patient_name": link.patient.display_name,
        "next_url": next_url,
        "resuming": bool(link.draft_answers),
        "total": len(_numbered(form)),
        "has_follow_ups": len(_numbered(form)) < len(form.sections),
    }
    return render(request, "intake/start.html", context)


@require_http_methods(["GET", "POST"])
@with_link
def section(request, link: IntakeLink, code: str):
    form = link.questionnaire.form
    current = form.section(code)
    if current is None:
        return _unavailable(request, 404, "Page not found", "This part of the form does not exist.", clinic=link.clinic)
    answers = link.draft_answers
    errors: dict = {}
    values = answers
    if request.method == "POST":
        raw = _raw_from_post(current, request.POST)
        later = request.POST.get("action") == "later"
        try:
            answers = intake_draft_save(link=link, section_code=current.code, raw=raw, complete=not later)
        except ValidationError as exc:
            errors, values = exc.message_dict, {**answers, **raw}
        except LinkUnavailableError as exc:
            title, message = UNAVAILABLE.get(exc.reason, UNAVAILABLE["revoked"])
            return _unavailable(request, 410, title, message, clinic=link.clinic)
        else:
            if later:
                return render(request, "intake/saved.html", _base_context(link))
            steps = _steps(form, answers)
            following = [s for s in steps if form.sections.index(s) > form.sections.index(current)]
            return redirect(
                _section_url(link, following[0]) if following else reverse("intake:review", args=[link.token])
            )
    steps = _steps(form, values)
    if current not in steps:
        # Not asked with the answers given so far (e.g. sciatica questions after "no").
        following = [s for s in steps if form.sections.index(s) > form.sections.index(current)]
        return redirect(_section_url(link, following[0]) if following else reverse("intake:review", args=[link.token]))
    position = steps.index(current)
    context = _base_context(link) | {
        "section": current,
        "fields": _fields(current, values, errors),
        "errors": [
            {
                "id": f"q-{code}",
                "text": _lead_in(form.questions[code].text if code in form.questions else code),
                "message": msgs[0],
            }
            for code, msgs in errors.items()
        ],
        **_progress(form, current),
        "back_url": _section_url(link, steps[position - 1]) if position else reverse("intake:start", args=[link.token]),
    }
    return render(request, "intake/section.html", context, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
@with_link
def review(request, link: IntakeLink):
    form = link.questionnaire.form
    missing: list[dict] = []
    if request.method == "POST":
        try:
            intake_submit(
                link=link,
                ip_address=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except LinkUnavailableError as exc:
            title, message = UNAVAILABLE.get(exc.reason, UNAVAILABLE["revoked"])
            return _unavailable(request, 410, title, message, clinic=link.clinic)
        except ValidationError as exc:
            missing = [
                {
                    "url": _section_url(link, _section_of(form, code)) + f"#q-{code}",
                    "text": _lead_in(form.questions[code].text),
                    "message": messages[0],
                }
                for code, messages in exc.message_dict.items()
                if code in form.questions
            ]
        else:
            return redirect("intake:thanks", token=link.token)
    steps = _steps(form, link.draft_answers)
    summary = form.summary(link.draft_answers)
    for block in summary:
        block["url"] = _section_url(link, form.section(block["code"]))
    context = _base_context(link) | {
        "summary": summary,
        "missing": missing,
        "step": len(_numbered(form)),
        "total": len(_numbered(form)),
        "back_url": _section_url(link, steps[-1]),
        "required_message": REQUIRED_MESSAGE,
    }
    return render(request, "intake/review.html", context, status=400 if missing else 200)


def _lead_in(text: str) -> str:
    """A question as the start of an error line: "How bad is it?" stays, "Your name" gets a colon."""
    return text if text.endswith(("?", ":", ".")) else f"{text}:"


def _section_of(form: Form, code: str) -> Section:
    return next(s for s in form.sections if any(q.code == code for q in s.questions))


@require_http_methods(["GET"])
@with_link(allow_submitted=True)
def thanks(request, link: IntakeLink):
    if link.status != IntakeLinkStatus.SUBMITTED:
        return redirect("intake:start", token=link.token)
    # What to do for each urgent flag still in force (this intake's, or one the clinic has
    # not cleared yet): the patient's own answers, in plain words, no rule names.
    codes = PatientFlag.objects.active().filter(patient_id=link.patient_id, severity=FlagSeverity.URGENT)
    advice = list(dict.fromkeys(urgent_advice(code) for code in codes.values_list("rule_code", flat=True)))
    return render(request, "intake/thanks.html", _base_context(link) | {"urgent_advice": advice})
