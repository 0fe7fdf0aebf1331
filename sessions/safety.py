"""Contraindication rules: an entry that meets an active intake flag is warned or blocked.

One declarative table, keyed by the flag's `rule_code` (written by the intake screening).
A rule says which kinds of entry it concerns and which entries it catches (deep work,
needling, electro-stimulation, a point avoided in pregnancy, or any); the flag's region
and side limit it to that part of the body (a blank region means the whole body).

The flag's severity decides the effect: urgent blocks, caution warns, info is shown on
the note screen only. A rule may block whatever the severity (electro-acupuncture with an
implanted device). A warning is overridden by a written reason stored with the entry; a
block is lifted only by a clinician clearing the flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from intake.models import FlagSeverity, PatientFlag
from sessions.models import EntryKind, NoteEntry
from treatments.models import BodyRegion, Side


class Effect(models.TextChoices):
    WARN = "warn", "Warning"
    BLOCK = "block", "Blocked"


def _any(entry: NoteEntry) -> bool:
    return True


def _deep_work(entry: NoteEntry) -> bool:
    return entry.is_deep_work()


def _deep_work_or_needling(entry: NoteEntry) -> bool:
    return entry.is_deep_work() or entry.is_needling()


def _electro(entry: NoteEntry) -> bool:
    return entry.uses_electro()


def _pregnancy_point(entry: NoteEntry) -> bool:
    return entry.is_pregnancy_point()


HANDS_ON = frozenset({EntryKind.ART, EntryKind.MASSAGE})
TREATMENT = frozenset({EntryKind.ART, EntryKind.MASSAGE, EntryKind.ACUPUNCTURE})


@dataclass(frozen=True)
class Contraindication:
    kinds: frozenset[str]
    catches: Callable[[NoteEntry], bool]
    message: str
    always_block: bool = False


CONTRAINDICATIONS: dict[str, Contraindication] = {
    "dvt_suspected": Contraindication(
        HANDS_ON, _any, "Suspected deep vein thrombosis on this limb: massage or ART could dislodge a clot."
    ),
    "varicose_veins": Contraindication(HANDS_ON, _deep_work, "Varicose veins here: no deep pressure over them."),
    "circulation_or_diabetic_sensation": Contraindication(
        TREATMENT,
        _deep_work_or_needling,
        "Poor circulation or reduced sensation: deep work and needling here risk tissue damage and infection.",
    ),
    "cauda_equina": Contraindication(TREATMENT, _any, "Possible cauda equina syndrome: refer now, do not treat."),
    "progressive_weakness_foot_drop": Contraindication(
        TREATMENT, _any, "Progressive weakness or foot drop: nerve compromise, refer before treatment."
    ),
    "recent_trauma_possible_fracture": Contraindication(
        TREATMENT, _any, "Recent trauma with bone pain: possible fracture in this area, refer before treatment."
    ),
    "systemic_red_flags": Contraindication(
        TREATMENT, _any, "Systemic red flags (fever, weight loss, cancer history, night pain): refer first."
    ),
    "anticoagulant_or_bleeding": Contraindication(
        TREATMENT, _deep_work_or_needling, "Anticoagulants or a bleeding disorder: deep pressure and needling bruise."
    ),
    "pregnancy": Contraindication(
        frozenset({EntryKind.ACUPUNCTURE}), _pregnancy_point, "Pregnancy: this point is traditionally avoided."
    ),
    "implanted_device": Contraindication(
        frozenset({EntryKind.ACUPUNCTURE}),
        _electro,
        "Pacemaker or other implanted electrical device: no electro-stimulation.",
        always_block=True,
    ),
    "thigh_injection_history": Contraindication(
        TREATMENT, _any, "History of injections into the thigh: risk of abscess and infection in this region."
    ),
    # The upper-body intake (intake/catalog_data/neck_shoulder_arm_hand_pain.yaml). Its suspected
    # arm DVT is `dvt_suspected` on the region `arm`, its systemic, bleeding, pregnancy and device
    # rules are the leg form's: the same finding means the same limit on treatment.
    "cervical_myelopathy": Contraindication(
        TREATMENT, _any, "Possible cervical myelopathy (spinal cord compression): refer now, no neck techniques."
    ),
    "cervical_artery": Contraindication(
        TREATMENT, _any, "Possible cervical artery problem (dissection, vertebrobasilar insufficiency): no neck work."
    ),
    "cardiac_arm_pain": Contraindication(
        TREATMENT, _any, "Arm pain with exertion and chest symptoms: possible heart cause, emergency referral."
    ),
    "progressive_weakness_arm": Contraindication(
        TREATMENT, _any, "Progressive arm weakness or muscle wasting: nerve compromise, refer before treatment."
    ),
    "fall_on_hand_possible_fracture": Contraindication(
        TREATMENT, _any, "Fall on an outstretched hand with wrist pain: possible scaphoid fracture, refer first."
    ),
    "neck_injury_possible_fracture": Contraindication(
        TREATMENT, _any, "Neck injury with pain over the bones: possible cervical fracture, refer first."
    ),
    "joint_infection": Contraindication(
        TREATMENT, _any, "Hot, swollen joint with fever: possible joint infection, refer before treatment."
    ),
    "lymphoedema_arm": Contraindication(
        TREATMENT,
        _deep_work_or_needling,
        "Lymph nodes removed or lymphoedema in this arm: deep pressure and needling risk swelling and infection.",
    ),
    "upper_neck_instability": Contraindication(
        HANDS_ON,
        _deep_work,
        "Rheumatoid arthritis or Down syndrome: possible upper-neck instability, nothing forceful.",
    ),
}


@dataclass(frozen=True)
class SafetyProblem:
    rule_code: str
    flag_id: int
    effect: Effect
    message: str

    def __str__(self) -> str:
        return self.message


class RegionMap:
    """Region id -> (code, parent id), read once per check instead of walking parents row by row."""

    def __init__(self) -> None:
        self._rows = {pk: (code, parent) for pk, code, parent in BodyRegion.objects.values_list("id", "code", "parent")}

    def lineage(self, region_id: int | None) -> set[str]:
        codes: set[str] = set()
        while region_id is not None and region_id in self._rows:
            code, parent = self._rows[region_id]
            if code in codes:
                break
            codes.add(code)
            region_id = parent
        return codes


def _sides_meet(flag_side: str, entry_side: str) -> bool:
    if not flag_side or not entry_side:
        return True
    return flag_side == entry_side or Side.BOTH in (flag_side, entry_side)


def _effect(flag: PatientFlag, rule: Contraindication) -> Effect | None:
    if rule.always_block or flag.severity == FlagSeverity.URGENT:
        return Effect.BLOCK
    if flag.severity == FlagSeverity.CAUTION:
        return Effect.WARN
    return None


def entry_problems(
    entry: NoteEntry, flags: Iterable[PatientFlag], regions: RegionMap | None = None
) -> list[SafetyProblem]:
    """The contraindications `entry` meets among the patient's active `flags`."""
    problems = []
    regions = regions or RegionMap()
    region = entry.safety_region()
    lineage = regions.lineage(region.pk if region is not None else None)
    for flag in flags:
        rule = CONTRAINDICATIONS.get(flag.rule_code)
        if rule is None or entry.kind not in rule.kinds or not rule.catches(entry):
            continue
        if flag.region and flag.region not in lineage:
            continue
        if flag.region and not _sides_meet(flag.side, entry.safety_side()):
            continue
        effect = _effect(flag, rule)
        if effect is not None:
            side = f" ({flag.get_side_display().lower()})" if flag.side else ""
            where = f" [{flag.region}{side}]" if flag.region else ""
            problems.append(SafetyProblem(flag.rule_code, flag.pk, effect, f"{rule.message}{where}"))
    return problems


def active_flags(patient_id: int) -> list[PatientFlag]:
    return list(PatientFlag.objects.active().filter(patient_id=patient_id))


def entry_check(entry: NoteEntry, *, flags: list[PatientFlag] | None = None, regions: RegionMap | None = None) -> None:
    """Raise a ValidationError for blocks, and for warnings without an override reason.

    On success, records on the entry which warnings its reason overrode.
    """
    if flags is None:
        flags = active_flags(entry.session.patient_id)
    problems = entry_problems(entry, flags, regions)
    blocks = [p for p in problems if p.effect == Effect.BLOCK]
    warnings = [p for p in problems if p.effect == Effect.WARN]
    if blocks:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"Blocked: {p.message} A clinician must clear the flag before this treatment." for p in blocks
                ]
            },
            code="contraindicated",
        )
    if warnings and not entry.override_reason.strip():
        raise ValidationError(
            {
                "override_reason": [
                    *(f"Warning: {p.message}" for p in warnings),
                    "Write a reason to go ahead despite the warning.",
                ]
            },
            code="override_needed",
        )
    entry.overridden_rules = sorted({p.rule_code for p in warnings})
