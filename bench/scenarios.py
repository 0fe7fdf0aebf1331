"""What `make bench` measures, and how it judges the results.

Each scenario is one kind of request. Baselines (a trivial view, a single-row DRF
retrieve) run in the same session, and every target is a ratio to them.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import random
import urllib.request
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.load import Request, Result, fixed_rate, saturate

BASELINE_TRIVIAL = "baseline: trivial view"
BASELINE_RETRIEVE = "baseline: single-row retrieve"


@dataclass
class Scenario:
    name: str
    group: str
    make: Callable[[dict, int], Request]
    is_list: bool = False
    needs: tuple[str, ...] = ()
    expected: frozenset[int] = frozenset({200})  # any other answer is a failure
    read: bool = True  # the read targets (p95 against the retrieve) apply
    as_therapist: bool = False  # a signed-in therapist's session instead of the API key


@dataclass
class Measured:
    scenario: Scenario
    saturation: Result
    fixed: Result
    queries_page_1: int | None = None
    queries_page_100: int | None = None
    notes: list[str] = field(default_factory=list)


def _get(path: str) -> Callable[[dict, int], Request]:
    return lambda ctx, i: ("GET", path.format(**ctx, i=i), None)


def _deep_cursor(ctx: dict, i: int) -> Request:
    # Cursor pages are ordered by -id; a cursor positioned just above the smallest id is
    # the deepest page, reached without walking every page before it.
    cursor = base64.b64encode(f"p={ctx['appointment_min_id'] + 101}".encode()).decode()
    return ("GET", f"/api/v1/appointments/?updated_since=2000-01-01T00:00:00Z&page_size=100&cursor={cursor}", None)


def _book(ctx: dict, i: int) -> Request:
    """Two requests for every slot, from different patients: the second is a clean 409."""
    booking = ctx["booking"]
    n = next(booking.setdefault("counter", itertools.count()))
    slot, practitioners = n // 2, booking["practitioners"]
    per_day = 20  # 08:00-18:00 in 30-minute steps (25 minutes and a 5-minute buffer)
    day = dt.date.fromisoformat(booking["first_day"]) + dt.timedelta(days=slot // (len(practitioners) * per_day))
    start = dt.datetime.combine(day, dt.time(8), tzinfo=zoneinfo.ZoneInfo(booking["tz"]))
    start += dt.timedelta(minutes=30 * ((slot // len(practitioners)) % per_day))
    body = {
        "patient": booking["patients"][n % len(booking["patients"])],
        "practitioner": practitioners[slot % len(practitioners)],
        "service": ctx["service"],
        "start": start.isoformat(),
    }
    return ("POST", "/api/v1/appointments/", json.dumps(body).encode())


def _cancel(ctx: dict, i: int) -> Request:
    # A different booked appointment every time; once the pool is spent (a tiny dataset), the
    # last one again: a 409 that the report counts as a failure rather than a silent stop.
    try:
        appointment = ctx["last_cancelled"] = ctx["cancel_ids"].pop()
    except IndexError:
        appointment = ctx["last_cancelled"]
    return ("POST", f"/api/v1/appointments/{appointment}/cancel/", b'{"party": "patient", "reason": "bench"}')


SCENARIOS = [
    Scenario(BASELINE_TRIVIAL, "baseline", _get("/bench/trivial")),
    Scenario(BASELINE_RETRIEVE, "baseline", _get("/api/v1/practitioners/{practitioner}/"), needs=("practitioner",)),
    Scenario("practitioners list", "front desk", _get("/api/v1/practitioners/"), is_list=True),
    Scenario("services list", "front desk", _get("/api/v1/services/"), is_list=True),
    Scenario("today's appointments of a practitioner", "front desk",
             _get("/api/v1/appointments/?practitioner={practitioner}&start_from={day_from}&start_to={day_to}"),
             is_list=True, needs=("practitioner",)),
    Scenario("patient search by name prefix", "front desk", _get("/api/v1/patients/?q={name_prefix}"),
             is_list=True, needs=("name_prefix",)),
    Scenario("patient search by phone", "front desk", _get("/api/v1/patients/?q={phone_part}"),
             is_list=True, needs=("phone_part",)),
    Scenario("patient detail", "front desk", _get("/api/v1/patients/{patient}/"), needs=("patient",)),
    Scenario("free slots for a week", "front desk",
             _get("/api/v1/slots/?service={service}&practitioner={practitioner}&start={week_from}&end={week_to}"),
             needs=("service", "practitioner")),
    Scenario("book an appointment (half collide: 409)", "front desk", _book, needs=("booking", "service"),
             expected=frozenset({201, 409}), read=False),
    Scenario("cancel an appointment", "front desk", _cancel, needs=("cancel_ids",), read=False),
    Scenario("a therapist's day of notes", "therapist",
             _get("/api/v1/notes/?practitioner={practitioner}&started_from={notes_day_from}&started_to={notes_day_to}"),
             is_list=True, needs=("practitioner", "therapist_cookie", "notes_on_day"), as_therapist=True),
    Scenario("a note with its entries", "therapist", _get("/api/v1/notes/{note}/"),
             needs=("note", "therapist_cookie"), as_therapist=True),
    Scenario("a patient's pain series", "therapist", _get("/api/v1/pain-series/{pain_patient}/"),
             needs=("pain_patient", "therapist_cookie"), as_therapist=True),
    Scenario("sync: first page of appointments", "integration",
             _get("/api/v1/appointments/?updated_since=2000-01-01T00:00:00Z&page_size=100"),
             needs=("appointment_min_id",)),
    Scenario("sync: deepest page of appointments", "integration", _deep_cursor, needs=("appointment_min_id",)),
    Scenario("FHIR Appointment search", "integration", _get("/fhir/R4/Appointment?_count=50")),
]  # fmt: skip


def _fetch_json(host: str, port: int, headers: dict, path: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(f"http://{host}:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, {}, dict(exc.headers)


def prepare(host: str, port: int, headers: dict) -> dict:
    """Ids the scenarios need, read through the API itself."""
    ctx: dict = {}
    status, body, _ = _fetch_json(host, port, headers, "/api/v1/practitioners/?page_size=1")
    if status == 200 and body.get("results"):
        ctx["practitioner"] = body["results"][0]["id"]
    return ctx


def _query_count(host: str, port: int, headers: dict, path: str, size: int) -> int | None:
    separator = "&" if "?" in path else "?"
    status, _, response_headers = _fetch_json(host, port, headers, f"{path}{separator}page_size={size}")
    value = response_headers.get("X-Query-Count")
    return int(value) if status == 200 and value else None


def _runnable(scenario: Scenario, ctx: dict) -> bool:
    return all(ctx.get(name) not in (None, [], {}) for name in scenario.needs)


def _headers(scenario: Scenario, ctx: dict, headers: dict) -> dict:
    return {"Cookie": ctx["therapist_cookie"]} if scenario.as_therapist else headers


def run_all(*, host: str, port: int, headers: dict, timing, context: dict | None = None) -> list[Measured]:
    ctx = {**prepare(host, port, headers), **(context or {})}
    measured = []
    for scenario in SCENARIOS:
        if not _runnable(scenario, ctx):
            print(f"bench: {scenario.name}: skipped (the dataset has nothing for it)", flush=True)
            continue
        make = lambda i, s=scenario: s.make(ctx, i)  # noqa: E731
        auth = _headers(scenario, ctx, headers)
        print(f"bench: {scenario.name}", flush=True)
        sat = saturate(scenario.name, host, port, auth, make, concurrency=timing.concurrency,
                       seconds=timing.saturation_seconds)  # fmt: skip
        # Latency is measured below saturation: at the run's rate, or at half of what this
        # endpoint sustained if that is less (past saturation a fixed rate measures the queue).
        rate = min(timing.rate, max(1.0, round(sat.throughput / 2)))
        fixed = fixed_rate(scenario.name, host, port, auth, make, rate=rate, seconds=timing.rate_seconds)
        item = Measured(scenario, sat, fixed)
        if scenario.is_list:
            path = scenario.make(ctx, 0)[1]
            item.queries_page_1 = _query_count(host, port, auth, path, 1)
            item.queries_page_100 = _query_count(host, port, auth, path, 100)
        measured.append(item)
    return measured


# The front-desk mix: what a receptionist's app sends, by share of requests (percent).
MIX = {
    "today's appointments of a practitioner": 25,
    "patient detail": 17,
    "patient search by name prefix": 15,
    "free slots for a week": 12,
    "patient search by phone": 8,
    "book an appointment (half collide: 409)": 8,
    "practitioners list": 6,
    "services list": 5,
    "cancel an appointment": 4,
}


def run_mix(*, host: str, port: int, headers: dict, ctx: dict, rate: float, seconds: float) -> Result:
    """The front-desk mix at a fixed total rate, each kind also reported on its own."""
    named = {s.name: s for s in SCENARIOS}
    plan = [named[name] for name, share in MIX.items() if _runnable(named[name], ctx) for _ in range(share)]
    random.Random(20261121).shuffle(plan)  # a reproducible order
    print(f"bench: front-desk mix at {rate:g} req/s", flush=True)
    return fixed_rate(
        "front-desk mix", host, port, headers, lambda i: plan[i % len(plan)].make(ctx, i),
        rate=rate, seconds=seconds, label=lambda i: plan[i % len(plan)].name,
    )  # fmt: skip


def _retrieve_at(host: str, port: int, headers: dict, ctx: dict, rate: float, seconds: float) -> Result:
    scenario = next(s for s in SCENARIOS if s.name == BASELINE_RETRIEVE)
    return fixed_rate(scenario.name, host, port, headers, lambda i: scenario.make(ctx, i), rate=rate, seconds=seconds)


@dataclass
class Growth:
    """Each front-desk kind and the retrieve baseline measured alone with one client (the cost of
    a request, no queueing), and the front-desk mix at half the run's rate: per dataset, pooled
    over rounds run in ABBA order (10%, full, full, 10%)."""

    alone: dict[str, dict[str, Result]]  # "tenth" / "full" -> kind -> one-client latencies
    mix: dict[str, Result]  # "tenth" / "full" -> the mix, every kind also on its own
    same_dataset: bool = False  # smoke: the dataset against itself, to keep the code running


def _pool(results: list[Result]) -> Result:
    pooled = Result(results[0].name, results[0].mode)
    for result in results:
        pooled.seconds += result.seconds
        pooled.latencies += result.latencies
        pooled.statuses += result.statuses
        pooled.queries += result.queries
        for label, part in result.parts.items():
            pooled.parts[label] = _pool([pooled.parts[label], part]) if label in pooled.parts else _pool([part])
    return pooled


GROWTH_KINDS = [BASELINE_RETRIEVE, *MIX]
ABBA = ("tenth", "full", "full", "tenth")


def run_growth(
    *, host: str, tenth: tuple[int, dict, dict], full: tuple[int, dict, dict], timing, same_dataset: bool = False
) -> Growth:
    """The same requests on the 10% and the full dataset, alternated so that drift, warm-up and
    run order fall on both alike: every kind alone in ABBA order, then the mix in ABBA order."""
    servers = {"tenth": tenth, "full": full}
    for label, (port, headers, ctx) in servers.items():  # warm both alike (the full one ran everything)
        print(f"bench: growth: warming up the {label} dataset", flush=True)
        run_mix(host=host, port=port, headers=headers, ctx=ctx, rate=timing.rate / 2,
                seconds=min(10, timing.rate_seconds))  # fmt: skip
    named = {s.name: s for s in SCENARIOS}
    alone: dict[str, dict[str, list[Result]]] = {"tenth": {}, "full": {}}
    for kind in GROWTH_KINDS:
        scenario = named[kind]
        print(f"bench: growth: {kind}, alone, ABBA", flush=True)
        for label in ABBA:
            port, headers, ctx = servers[label]
            if not _runnable(scenario, ctx):
                continue
            # One client: each request's own cost (the booking and cancel scenarios keep their
            # own counters, so every round books new slots and cancels other appointments).
            make = lambda i, s=scenario, c=ctx: s.make(c, i)  # noqa: E731
            result = saturate(kind, host, port, _headers(scenario, ctx, headers), make, concurrency=1,
                              seconds=timing.saturation_seconds / 2)  # fmt: skip
            alone[label].setdefault(kind, []).append(result)
    mixes: dict[str, list[Result]] = {"tenth": [], "full": []}
    for label in ABBA:
        port, headers, ctx = servers[label]
        print(f"bench: growth: the front-desk mix on the {label} dataset", flush=True)
        mixes[label].append(run_mix(host=host, port=port, headers=headers, ctx=ctx, rate=timing.rate / 2,
                                    seconds=timing.rate_seconds / 2))  # fmt: skip
    return Growth(
        alone={label: {kind: _pool(parts) for kind, parts in kinds.items()} for label, kinds in alone.items()},
        mix={label: _pool(parts) for label, parts in mixes.items()},
        same_dataset=same_dataset,
    )


def _unexpected(scenario_name: str, result: Result) -> int:
    expected = next((s.expected for s in SCENARIOS if s.name == scenario_name), frozenset({200}))
    return sum(n for code, n in result.statuses.items() if code not in expected)


def mix_report(mix: Result, base: Measured | None) -> tuple[str, list[tuple[str, str, bool]]]:
    lines = [
        f"## Front-desk mix at {mix.mode}",
        "",
        f"{mix.requests:,} requests in {mix.seconds:.0f} s, every kind interleaved in fixed shares; latency from",
        "each request's scheduled start. The ratio is to the retrieve baseline's p95 measured on its own.",
        "",
        "| request | share | requests | p50 ms | p95 ms | p99 ms | p95 / retrieve | answers |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base_p95 = base.fixed.percentile(95) if base else float("nan")
    for name, share in MIX.items():
        part = mix.parts.get(name)
        if part is None:
            continue
        codes = ", ".join(f"{c}×{n}" for c, n in sorted(part.statuses.items()))
        lines.append(
            f"| {name} | {share}% | {part.requests:,} | {part.percentile(50):.1f} | {part.percentile(95):.1f} | "
            f"{part.percentile(99):.1f} | {part.percentile(95) / base_p95:.2f}× | {codes} |"
        )
    unexpected = sum(_unexpected(name, part) for name, part in mix.parts.items())
    rows = [
        (f"front-desk mix: 0 errors at {mix.mode}", f"{mix.errors} errors", mix.errors == 0),
        ("front-desk mix: every answer expected (2xx; 409 for colliding bookings)", f"{unexpected} unexpected",
         unexpected == 0),
    ]  # fmt: skip
    return "\n".join(lines) + "\n", rows


def growth_report(growth: Growth) -> str:
    """Full over 10% per kind of front-desk request: p95 of each kind alone (judged) and within
    the mix (for reference), each also relative to the retrieve baseline's own ratio."""
    alone_base = _growth_ratio(growth.alone, BASELINE_RETRIEVE)
    lines = [
        "## Growth: full dataset against 10% of it",
        "",
    ]
    if growth.same_dataset:
        lines += ["Smoke run: the dataset is compared with itself, to keep this code running; the ratios",
                  "show the noise of the method, not growth.", ""]  # fmt: skip
    lines += [
        "Each kind of front-desk request alone with one client (no queueing: the cost of one request),",
        "on the 10% and the full dataset in ABBA order (10%, full, full, 10%) so drift, warm-up and run",
        "order fall on both alike; latencies pooled per dataset. Target: full ≤ 1.3× the 10% dataset on",
        f"every endpoint's p95. The single-row retrieve, whose cost does not depend on the data, moved "
        f"{alone_base:.2f}× (the method's noise).",
        "",
        "| request | requests 10% / full | p50 ms at 10% | p50 ms full | p95 ms at 10% | p95 ms full | ratio | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for kind in GROWTH_KINDS:
        small, large = growth.alone["tenth"].get(kind), growth.alone["full"].get(kind)
        if small is None or large is None:
            continue
        ratio = large.percentile(95) / small.percentile(95)
        failures = _unexpected(kind, small) + _unexpected(kind, large)
        met = ratio <= 1.3 and failures == 0
        note = "" if failures == 0 else f" ({failures} unexpected answers)"
        lines.append(
            f"| {kind} | {small.requests:,} / {large.requests:,} | {small.percentile(50):.1f} | "
            f"{large.percentile(50):.1f} | {small.percentile(95):.1f} | {large.percentile(95):.1f} | "
            f"{ratio:.2f}× | {'yes' if met else '**no**'}{note} |"
        )
    tenth_mix, full_mix = growth.mix["tenth"], growth.mix["full"]
    lines += [
        "",
        f"For reference, the front-desk mix at {full_mix.mode} on each dataset (ABBA, pooled): here each",
        "request also waits for its neighbours, so queueing multiplies small differences.",
        "",
        "| request | p95 ms at 10% | p95 ms full | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind in MIX:
        small, large = tenth_mix.parts.get(kind), full_mix.parts.get(kind)
        if small is None or large is None:
            continue
        lines.append(
            f"| {kind} | {small.percentile(95):.1f} | {large.percentile(95):.1f} | "
            f"{large.percentile(95) / small.percentile(95):.2f}× |"
        )
    return "\n".join(lines) + "\n"


def _growth_ratio(by_dataset: dict[str, dict[str, Result]], kind: str) -> float:
    small, large = by_dataset["tenth"].get(kind), by_dataset["full"].get(kind)
    return large.percentile(95) / small.percentile(95) if small and large else float("nan")


def growth_summary(growth: Growth | None) -> dict:
    if growth is None:
        return {}
    return {
        kind: {
            "alone_p95_ms_tenth": round(growth.alone["tenth"][kind].percentile(95), 2),
            "alone_p95_ms_full": round(growth.alone["full"][kind].percentile(95), 2),
            "alone_requests": growth.alone["tenth"][kind].requests + growth.alone["full"][kind].requests,
            "alone_errors": growth.alone["tenth"][kind].errors + growth.alone["full"][kind].errors,
        }
        for kind in GROWTH_KINDS
        if kind in growth.alone["tenth"] and kind in growth.alone["full"]
    }


def _by_name(results: list[Measured]) -> dict[str, Measured]:
    return {m.scenario.name: m for m in results}


def summary(results: list[Measured], memory_mb: float) -> dict:
    return {
        "worker_peak_memory_mb": round(memory_mb, 1),
        "scenarios": {
            m.scenario.name: {
                "throughput_rps": round(m.saturation.throughput, 1),
                "p50_ms": round(m.fixed.percentile(50), 2),
                "p95_ms": round(m.fixed.percentile(95), 2),
                "p99_ms": round(m.fixed.percentile(99), 2),
                "errors": m.saturation.errors + m.fixed.errors,
                "statuses": {str(c): n for c, n in (m.saturation.statuses + m.fixed.statuses).items()},
                "requests": m.saturation.requests + m.fixed.requests,
                "queries": sorted(m.fixed.queries),
                "queries_page_1": m.queries_page_1,
                "queries_page_100": m.queries_page_100,
            }
            for m in results
        },
    }


def targets(results: list[Measured], memory_mb: float) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target the issue sets that this run covers; met is None
    for a figure shown for reference where the issue sets no target."""
    named = _by_name(results)
    base = named.get(BASELINE_RETRIEVE)
    rows = []
    for m in results:
        errors = m.fixed.errors
        rows.append((f"{m.scenario.name}: 0 errors at the fixed rate", f"{errors} errors", errors == 0))
        statuses = m.saturation.statuses + m.fixed.statuses
        unexpected = sum(n for code, n in statuses.items() if code not in m.scenario.expected)
        codes = ", ".join(f"{c}×{n}" for c, n in sorted(statuses.items()))
        wanted = "/".join(str(c) for c in sorted(m.scenario.expected))
        rows.append((f"{m.scenario.name}: every answer {wanted}", codes, unexpected == 0))
        if base is None or m.scenario.group == "baseline" or not m.scenario.read:
            continue
        ratio = m.fixed.percentile(95) / base.fixed.percentile(95)
        rows.append((f"{m.scenario.name}: p95 ≤ 4× retrieve", f"{ratio:.2f}×", ratio <= 4))
        if m.scenario.is_list:
            share = m.saturation.throughput / base.saturation.throughput
            if m.scenario.group == "front desk":
                rows.append((f"{m.scenario.name}: throughput ≥ 40% of retrieve", f"{share:.0%}", share >= 0.4))
            else:  # the issue sets the 40% target for the front-desk mix's lists; shown for the others
                rows.append((f"{m.scenario.name}: throughput share of retrieve", f"{share:.0%}", None))
            same = m.queries_page_1 is not None and m.queries_page_1 == m.queries_page_100
            rows.append((f"{m.scenario.name}: queries independent of page size",
                         f"{m.queries_page_1} at 1, {m.queries_page_100} at 100", same))  # fmt: skip
    slots, first, deep = (named.get(n) for n in ("free slots for a week", "sync: first page of appointments",
                                                  "sync: deepest page of appointments"))  # fmt: skip
    if base and slots:
        ratio = slots.fixed.percentile(95) / base.fixed.percentile(95)
        rows.append(("free-slot search for a week: p95 ≤ 5× retrieve", f"{ratio:.2f}×", ratio <= 5))
    if first and deep:
        ratio = deep.fixed.percentile(95) / first.fixed.percentile(95)
        rows.append(("deepest cursor page: p95 ≤ 1.5× first page", f"{ratio:.2f}×", ratio <= 1.5))
    rows.append(("web worker peak memory ≤ 250 MB", f"{memory_mb:.0f} MB", memory_mb <= 250))
    return rows


def report(
    results: list[Measured],
    *,
    mix: Result | None,
    scale,
    cores: int,
    workers: int,
    memory_mb: float,
    date: str,
    context: dict | None = None,
) -> str:
    lines = [
        f"# Benchmark: {scale.name} scale, {date}",
        "",
        f"Machine: {cores} cores; gunicorn with {workers} sync workers, production settings, PostgreSQL and "
        f"Redis on localhost, a Celery worker. Dataset: {scale.clinics} clinics, {scale.practitioners} "
        f"practitioners, {scale.patients:,} patients, {scale.appointments:,} appointments, "
        f"{scale.notes:,} signed notes with entries, {scale.messages:,} messages. A therapist's day of notes "
        f"(the latest day with notes) holds {(context or {}).get('notes_on_day') or 0} notes.",
        "",
        "Each scenario on its own: throughput with clients sending back to back (saturation), then latency at a",
        "fixed rate below saturation (the run's rate, or half the saturated throughput if that is less),",
        "timed from each request's scheduled start.",
        "",
        "| scenario | group | saturation req/s | fixed rate | p50 ms | p95 ms | p99 ms | errors | SQL/request |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in results:
        queries = ", ".join(str(q) for q in sorted(m.fixed.queries)) or "-"
        lines.append(
            f"| {m.scenario.name} | {m.scenario.group} | {m.saturation.throughput:.0f} | {m.fixed.mode} | "
            f"{m.fixed.percentile(50):.1f} | {m.fixed.percentile(95):.1f} | {m.fixed.percentile(99):.1f} | "
            f"{m.saturation.errors + m.fixed.errors} | {queries} |"
        )
    lines += ["", f"Web worker peak memory: {memory_mb:.0f} MB.", ""]
    rows = targets(results, memory_mb)
    if mix is not None:
        text, mix_rows = mix_report(mix, _by_name(results).get(BASELINE_RETRIEVE))
        lines += [text]
        rows = mix_rows + rows
    lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    for target, value, met in rows:
        lines.append(f"| {target} | {value} | {'reference' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"
