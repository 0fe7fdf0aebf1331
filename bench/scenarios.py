"""What `make bench` measures, and how it judges the results.

Each scenario is one kind of request. Baselines (a trivial view, a single-row DRF
retrieve) run in the same session, and every target is a ratio to them.
"""

from __future__ import annotations

import base64
import json
import urllib.request
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


def run_all(*, host: str, port: int, headers: dict, timing, context: dict | None = None) -> list[Measured]:
    ctx = {**prepare(host, port, headers), **(context or {})}
    measured = []
    for scenario in SCENARIOS:
        if any(name not in ctx for name in scenario.needs):
            continue
        make = lambda i, s=scenario: s.make(ctx, i)  # noqa: E731
        print(f"bench: {scenario.name}", flush=True)
        sat = saturate(scenario.name, host, port, headers, make, concurrency=timing.concurrency,
                       seconds=timing.saturation_seconds)  # fmt: skip
        fixed = fixed_rate(scenario.name, host, port, headers, make, rate=timing.rate, seconds=timing.rate_seconds)
        item = Measured(scenario, sat, fixed)
        if scenario.is_list:
            path = scenario.make(ctx, 0)[1]
            item.queries_page_1 = _query_count(host, port, headers, path, 1)
            item.queries_page_100 = _query_count(host, port, headers, path, 100)
        measured.append(item)
    return measured


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


def targets(results: list[Measured], memory_mb: float) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target the issue sets that this run covers."""
    named = _by_name(results)
    base = named.get(BASELINE_RETRIEVE)
    rows = []
    for m in results:
        errors = m.fixed.errors
        rows.append((f"{m.scenario.name}: 0 errors at the fixed rate", f"{errors} errors", errors == 0))
        answered = m.saturation.non_2xx + m.fixed.non_2xx
        codes = ", ".join(f"{c}×{n}" for c, n in sorted((m.saturation.statuses + m.fixed.statuses).items()))
        rows.append((f"{m.scenario.name}: every answer 2xx", codes, answered == 0))
        if base is None or m.scenario.group == "baseline":
            continue
        ratio = m.fixed.percentile(95) / base.fixed.percentile(95)
        rows.append((f"{m.scenario.name}: p95 ≤ 4× retrieve", f"{ratio:.2f}×", ratio <= 4))
        if m.scenario.is_list:
            share = m.saturation.throughput / base.saturation.throughput
            rows.append((f"{m.scenario.name}: throughput ≥ 40% of retrieve", f"{share:.0%}", share >= 0.4))
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


def report(results: list[Measured], *, scale, cores: int, workers: int, memory_mb: float, date: str) -> str:
    lines = [
        f"# Benchmark: {scale.name} scale, {date}",
        "",
        f"Machine: {cores} cores; gunicorn with {workers} sync workers, production settings, "
        f"PostgreSQL and Redis on localhost. Dataset: {scale.clinics} clinics, {scale.practitioners} "
        f"practitioners, {scale.patients:,} patients, {scale.appointments:,} appointments.",
        "",
        "| scenario | group | saturation req/s | p50 ms | p95 ms | p99 ms | errors | SQL/request |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in results:
        queries = ", ".join(str(q) for q in sorted(m.fixed.queries)) or "-"
        lines.append(
            f"| {m.scenario.name} | {m.scenario.group} | {m.saturation.throughput:.0f} | "
            f"{m.fixed.percentile(50):.1f} | {m.fixed.percentile(95):.1f} | {m.fixed.percentile(99):.1f} | "
            f"{m.saturation.errors + m.fixed.errors} | {queries} |"
        )
    mode = results[0].fixed.mode if results else "-"
    lines += ["", f"Fixed rate: {mode}. Web worker peak memory: {memory_mb:.0f} MB.", "", "## Targets", ""]
    lines += ["| target | measured | met |", "| --- | --- | --- |"]
    for target, value, met in targets(results, memory_mb):
        lines.append(f"| {target} | {value} | {'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"
