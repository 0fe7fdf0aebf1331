"""A small HTTP load generator: closed-loop saturation and open-loop fixed rate.

Latency at a fixed rate is measured from each request's scheduled start, so a
slow server cannot hide queueing (no coordinated omission).
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

Request = tuple[str, str, bytes | None]  # method, path, body
RequestFn = Callable[[int], Request]


@dataclass
class Result:
    name: str
    mode: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    queries: Counter = field(default_factory=Counter)
    # A mix of request kinds: each kind's own answers (label -> Result).
    parts: dict[str, Result] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        """Server errors and failed connections; 4xx answers (e.g. a 409) are answers."""
        return sum(n for code, n in self.statuses.items() if code == 0 or code >= 500)

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


class _Client(threading.local):
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port, self.headers = host, port, headers
        self.conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> tuple[int, int | None]:
        method, path, body = request
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                queries = response.getheader("X-Query-Count")
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, int(queries) if queries else None
            except (ConnectionError, http.client.HTTPException, OSError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    return 0, None
        return 0, None


def _record(
    result: Result, lock: threading.Lock, latency: float, status: int, queries: int | None, label: str | None = None
) -> None:
    with lock:
        targets = [result]
        if label is not None:
            targets.append(result.parts.setdefault(label, Result(label, result.mode)))
        for target in targets:
            target.latencies.append(latency)
            target.statuses[status] += 1
            if queries is not None:
                target.queries[queries] += 1


def saturate(
    name: str, host: str, port: int, headers: dict, make: RequestFn, *, concurrency: int, seconds: float
) -> Result:
    """As many requests as `concurrency` clients can send back to back for `seconds`."""
    result, lock = Result(name, "saturation"), threading.Lock()
    client = _Client(host, port, headers)
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < deadline:
            request = make(next(counter))
            started = time.perf_counter()
            status, queries = client.send(request)
            _record(result, lock, time.perf_counter() - started, status, queries)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def fixed_rate(
    name: str,
    host: str,
    port: int,
    headers: dict,
    make: RequestFn,
    *,
    rate: float,
    seconds: float,
    max_workers: int = 64,
    label: Callable[[int], str] | None = None,
) -> Result:
    """`rate` requests per second for `seconds`, each timed from its scheduled start.

    With `label`, request `i` is of kind `label(i)` and each kind is also reported on its own."""
    result, lock = Result(name, f"{rate:g} req/s"), threading.Lock()
    client = _Client(host, port, headers)
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    def one(i: int):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        status, queries = client.send(make(i))
        _record(result, lock, time.perf_counter() - scheduled, status, queries, label(i) if label else None)

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        list(pool.map(one, range(total)))
    result.seconds = time.perf_counter() - start
    return result
