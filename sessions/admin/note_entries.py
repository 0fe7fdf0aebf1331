"""The structured entries of a note in the admin (ART, massage, acupuncture, home care) and
the note's safety review.

The safety review lists every contraindication the note's entries meet, blocks and
warnings, for the whole note at once, with one reason field per warning (named
`<entry prefix>-override-<rule code>`), so three warnings are answered in one save. The
reasons are written into the entry's `override_reason` and saved through
`sessions.services.entry_save`, whose `entry_check` is the same rule the API meets.

ART protocols are a plain select grouped by structure; `sessions/note_entry.js` narrows it
to the chosen structure when scripts run, and `ArtEntry.clean` refuses a protocol of
another structure either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Q
from django.utils.text import capfirst

from clinic.admin import user_clinic_ids
from sessions.models import AcupunctureEntry, ArtEntry, HomeCareEntry, MassageEntry, NoteEntry
from sessions.safety import Effect, RegionMap, SafetyProblem, active_flags, entry_problems
from treatments.models import ArtProtocol

BLOCK_ADVICE = "A clinician must clear the flag before this treatment."
WARNING_ADVICE = "Give a reason for this warning in the safety review at the top of the page."


def reason_field_name(prefix: str, rule_code: str) -> str:
    return f"{prefix}-override-{rule_code}"


def rule_label(rule_code: str) -> str:
    return rule_code.replace("_", " ").capitalize()


def override_text(reasons: dict[str, str]) -> str:
    """One entry's reasons as its `override_reason`: the text itself when every warning got
    the same answer, else one line per warning ("Varicose veins: ...")."""
    texts = list(dict.fromkeys(reasons.values()))
    if len(texts) == 1:
        return texts[0]
    return "\n".join(f"{rule_label(rule)}: {text}" for rule, text in sorted(reasons.items()))


def stored_reason(entry: NoteEntry, rule_code: str) -> str:
    """The reason an entry already holds for a warning it overrode, or ""."""
    if rule_code not in (entry.overridden_rules or []) or not entry.override_reason.strip():
        return ""
    label = f"{rule_label(rule_code)}: "
    for line in entry.override_reason.splitlines():
        if line.startswith(label):
            return line[len(label) :].strip()
    return entry.override_reason.strip()


def _safety_context(session) -> tuple[list, RegionMap]:
    # Read once per note and request: every entry form of the note asks for the same flags.
    cached = getattr(session, "_safety_context", None)
    if cached is None:
        cached = (active_flags(session.patient_id), RegionMap())
        session._safety_context = cached
    return cached


@dataclass
class SafetyItem:
    """One line of the safety review: a problem of one entry, and for a warning its reason."""

    entry: str
    problem: SafetyProblem
    field_name: str = ""
    reason: str = ""
    missing: bool = False

    @property
    def blocked(self) -> bool:
        return self.problem.effect == Effect.BLOCK


class EntryForm(forms.ModelForm):
    """Runs the safety rules while the form is validated: a block is an error on its entry; a
    warning needs its reason from the safety review (or the one the entry already holds)."""

    safety_items: list[SafetyItem]
    _reasons_changed = False

    def has_changed(self) -> bool:
        return super().has_changed() or self._reasons_changed

    def _post_clean(self):
        super()._post_clean()
        self.safety_items = []
        if self.errors or self.cleaned_data.get("DELETE"):
            return
        changed = super().has_changed()
        if self.instance.pk is None and not changed:
            return
        session = getattr(self.instance, "session", None)
        if session is None or session.patient_id is None:
            return
        flags, regions = _safety_context(session)
        reasons: dict[str, str] = {}
        for problem in entry_problems(self.instance, flags, regions):
            item = SafetyItem(entry=entry_label(self), problem=problem)
            self.safety_items.append(item)
            if item.blocked:
                if changed:
                    self.add_error(None, f"Blocked: {problem.message} {BLOCK_ADVICE}")
                continue
            item.field_name = reason_field_name(self.prefix, problem.rule_code)
            typed = self.data.get(item.field_name)
            item.reason = stored_reason(self.instance, problem.rule_code) if typed is None else typed.strip()
            item.missing = not item.reason
            if item.reason:
                reasons[problem.rule_code] = item.reason
            elif changed:
                self.add_error(None, f"Warning: {problem.message} {WARNING_ADVICE}")
        if not reasons or any(item.missing for item in self.safety_items):
            return
        text = override_text(reasons)
        if text != self.instance.override_reason or sorted(reasons) != sorted(self.instance.overridden_rules or []):
            self._reasons_changed = True
            self.instance.override_reason = text


def entry_label(form: forms.ModelForm) -> str:
    """How the review names an entry: its kind, its row number and what it says."""
    number = int(form.prefix.rsplit("-", 1)[-1]) + 1
    return f"{capfirst(form.instance._meta.verbose_name)} {number}: {form.instance}"


def safety_review(inline_admin_formsets) -> list[SafetyItem]:
    """Every problem of every entry on the page: from the validated forms after a POST, and
    computed for the saved entries on a GET (a flag raised after an entry was written)."""
    items: list[SafetyItem] = []
    for inline_admin_formset in inline_admin_formsets:
        formset = inline_admin_formset.formset
        if not issubclass(formset.form, EntryForm):
            continue
        for form in formset.forms:
            if form.is_bound:
                items.extend(getattr(form, "safety_items", []))
            elif form.instance.pk is not None:
                items.extend(_saved_entry_items(form))
    return items


def _saved_entry_items(form: EntryForm) -> list[SafetyItem]:
    entry = form.instance
    flags, regions = _safety_context(entry.session)
    items = []
    for problem in entry_problems(entry, flags, regions):
        item = SafetyItem(entry=entry_label(form), problem=problem)
        if not item.blocked:
            item.field_name = reason_field_name(form.prefix, problem.rule_code)
            item.reason = stored_reason(entry, problem.rule_code)
            item.missing = not item.reason
        items.append(item)
    return items


# --- ART protocols narrowed to the chosen structure -------------------------------------


class ProtocolSelect(forms.Select):
    """Protocols grouped by structure; each option names its structure for `note_entry.js`."""

    def __init__(self, structure_of: dict[int, int] | None = None, attrs=None):
        super().__init__(attrs)
        self.structure_of = structure_of or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        structure = self.structure_of.get(getattr(value, "value", value))
        if structure is not None:
            option["attrs"]["data-structure"] = str(structure)
        return option


def protocol_field(queryset) -> forms.ModelChoiceField:
    protocols = list(queryset.select_related("structure").order_by("structure__name", "name", "pk"))
    groups: dict[str, list[tuple[int, str]]] = {}
    for protocol in protocols:
        groups.setdefault(protocol.structure.name, []).append((protocol.pk, protocol.name))
    field = forms.ModelChoiceField(
        queryset=queryset,
        required=False,
        widget=ProtocolSelect({p.pk: p.structure_id for p in protocols}),
        help_text="Only the chosen structure's protocols fit.",
    )
    field.choices = [("", "---------"), *groups.items()]
    return field


# --- the inlines ----------------------------------------------------------------------------


class _EntryInline(admin.StackedInline):
    """Stacked, a few fields to a line: every input keeps its label (a table's header is not
    one), and the lines wrap to the screen instead of a table stretching a 1366 px page."""

    form = EntryForm
    extra = 0
    classes = ["note-entries"]
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})}}

    def _editable(self, obj) -> bool:
        return obj is None or not obj.is_signed

    def _catalog_rows(self, request, model):
        # Shared catalog rows and the user's clinics' additions, never another clinic's.
        if request.user.is_superuser:
            return model.objects.all()
        return model.objects.filter(Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request)))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if hasattr(db_field.related_model.objects, "for_clinic"):
            kwargs["queryset"] = self._catalog_rows(request, db_field.related_model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if hasattr(db_field.related_model.objects, "for_clinic"):
            kwargs["queryset"] = self._catalog_rows(request, db_field.related_model)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class ArtEntryInline(_EntryInline):
    model = ArtEntry
    autocomplete_fields = ["structure"]
    fields = [("structure", "protocol"), ("side", "passes"), ("patient_movement", "response")]

    class Media:
        js = ["sessions/note_entry.js"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "protocol":
            return protocol_field(self._catalog_rows(request, ArtProtocol))
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class MassageEntryInline(_EntryInline):
    model = MassageEntry
    autocomplete_fields = ["region", "trigger_points"]
    fields = [("region", "side"), ("technique", "pressure", "minutes"), "trigger_points"]


class AcupunctureEntryInline(_EntryInline):
    model = AcupunctureEntry
    autocomplete_fields = ["point"]
    fields = [
        ("point", "side"), ("needles_inserted", "needles_removed"), ("depth_mm", "retention_minutes"),
        "electro_stimulation",
    ]  # fmt: skip


class HomeCareInline(_EntryInline):
    model = HomeCareEntry
    fields = [("exercise", "frequency"), ("sets", "reps"), "instructions"]
