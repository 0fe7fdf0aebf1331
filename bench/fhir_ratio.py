"""In-process check of the FHIR search target: `GET /fhir/R4/Appointment?_count=50` against a
single-row DRF retrieve (`GET /api/v1/practitioners/<id>/`), both through django.test.Client
with an API key, on the smoke dataset (1 clinic, 3 practitioners, 300 patients, 600
appointments) in a throwaway database. Target: FHIR p95 at most 4x the retrieve's p95.

    DJANGO_ENV=test DEBUG=0 DATABASE_URL=postgres://... python -m bench.fhir_ratio [--requests 200]

Requests alternate between the two paths so a busy machine slows both alike. `make bench`
measures the same scenario over HTTP under gunicorn; this is the quick loop for FHIR work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.dataset import SCALES, api_key_for, build, scenario_context

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{connection.settings_dict['NAME']}_fhir_ratio"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with open(os.devnull, "w") as quiet:
            call_command("load_catalogs", verbosity=0, stdout=quiet)  # as `make bench` does
        build(SCALES["smoke"])
        client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_for('bench-0')}")
        paths = {
            "retrieve": f"/api/v1/practitioners/{scenario_context()['practitioner']}/",
            "fhir": "/fhir/R4/Appointment?_count=50",
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        cpu_times: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(args.warmup + args.requests):
            for name, path in paths.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(path)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
                if i >= args.warmup:
                    times[name].append(elapsed * 1000)
                    cpu_times[name].append(cpu * 1000)
        if len(client.get(paths["fhir"]).json()["entry"]) != 50:
            raise SystemExit("The FHIR search should answer a full page of 50 appointments.")
        print(f"DEBUG={settings.DEBUG}, {args.requests} requests each (after {args.warmup} warm-up)")
        for name, path in paths.items():
            print(f"  {name:<9} {path:<40} median {statistics.median(times[name]):7.2f} ms"
                  f"  p95 {_p95(times[name]):7.2f} ms  (CPU of this process: median"
                  f" {statistics.median(cpu_times[name]):6.2f} ms)")  # fmt: skip
        median = statistics.median(times["fhir"]) / statistics.median(times["retrieve"])
        p95 = _p95(times["fhir"]) / _p95(times["retrieve"])
        print(f"  ratio fhir/retrieve: median {median:.1f}x, p95 {p95:.1f}x (target p95 <= 4x)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
