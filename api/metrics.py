"""Prometheus metrics: HTTP latency (ASGI middleware), jobs by state, stage durations, queue depth."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

QUEUES = ("analysis", "report")


class HttpMetrics:
    """Pure ASGI middleware (no body buffering) recording request latency by route."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram(
            "mgs_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.latency.labels(scope["method"], path, str(status[0])).observe(
                time.perf_counter() - t0
            )


async def render(app_state: State) -> bytes:
    """The HTTP registry plus figures read from Postgres and Redis at scrape time."""
    from core.jobs.monitoring import job_stats

    out = generate_latest(app_state.metrics_registry)
    jobs = GaugeMetricFamily("mgs_jobs", "Jobs by state", labels=["state"])
    stages = SummaryMetricFamily(
        "mgs_stage_duration_seconds", "Seconds spent per stage by finished jobs", labels=["stage"]
    )
    depth = GaugeMetricFamily(
        "mgs_queue_depth", "Messages waiting in each broker queue", labels=["queue"]
    )
    async with app_state.sessionmaker() as s:
        stats = await job_stats(s)
    for state, n in stats.by_state.items():
        jobs.add_metric([state], n)
    for d in stats.stage_durations:
        stages.add_metric([d.stage], count_value=d.count, sum_value=d.total_s)
    for q in QUEUES:
        try:
            depth.add_metric([q], await app_state.redis.llen(q))
        except Exception:
            depth.add_metric([q], float("nan"))
    reg = CollectorRegistry()

    class _Static:
        def collect(self) -> list[Any]:
            return [jobs, stages, depth]

    reg.register(_Static())  # type: ignore[arg-type]
    return out + generate_latest(reg)
