"""Prometheus metrics, computed from the run log at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pvegit.service.status import host_status
from pvegit.state.liveness import settle_runs
from pvegit.state.runs import RunStatus
from pvegit.system.diskspace import disk_space

if TYPE_CHECKING:
    from web.context import Context


class _PvegitCollector:
    def __init__(self, context: Context) -> None:
        self._context = context

    def collect(self) -> Iterator[Metric]:
        context = self._context
        store = context.store
        settle_runs(context.home, store)
        latest = store.latest_runs()
        successes = store.latest_successes()
        now = time.time()
        last_success = GaugeMetricFamily(
            "pvegit_host_last_success_timestamp_seconds",
            "When the host's newest successful run finished",
            labels=["host"],
        )
        status = GaugeMetricFamily(
            "pvegit_host_last_run_status",
            "1 for the status of the host's newest run",
            labels=["host", "status"],
        )
        duration = GaugeMetricFamily(
            "pvegit_host_last_run_duration_seconds",
            "Duration of the host's newest run",
            labels=["host"],
        )
        files = GaugeMetricFamily(
            "pvegit_host_last_run_files", "Files in the newest run", labels=["host"]
        )
        size = GaugeMetricFamily(
            "pvegit_host_last_run_bytes", "Bytes read by the newest run", labels=["host"]
        )
        changes = GaugeMetricFamily(
            "pvegit_host_last_run_changed_files", "Files the newest run changed", labels=["host"]
        )
        stale = GaugeMetricFamily("pvegit_host_stale", "1 if the host is stale", labels=["host"])
        repo = GaugeMetricFamily(
            "pvegit_repository_size_bytes", "Size of the host's repository", labels=["host"]
        )
        stale_count = 0
        for host in store.hosts():
            run = latest.get(host.name)
            success = successes.get(host.name)
            kind = host_status(
                host,
                run,
                success,
                now=now,
                default_schedule=context.config.default_schedule,
                stale_factor=context.config.stale_factor,
            ).kind
            if success is not None:
                last_success.add_metric([host.name], success.finished_at or success.started_at)
            if run is not None:
                for each in RunStatus:
                    status.add_metric([host.name, each.value], 1.0 if run.status is each else 0.0)
                duration.add_metric([host.name], run.duration or 0.0)
                files.add_metric([host.name], run.files)
                size.add_metric([host.name], run.bytes)
                changes.add_metric([host.name], run.changed_files)
            stale.add_metric([host.name], 1.0 if kind == "stale" else 0.0)
            stale_count += kind == "stale"
            path = context.home.repo_path(host.name)
            if path.exists():
                repo.add_metric(
                    [host.name],
                    sum(item.stat().st_size for item in path.rglob("*") if item.is_file()),
                )
        totals = CounterMetricFamily("pvegit_runs", "Runs recorded, by status", labels=["status"])
        for counted, count in store.run_counts().items():
            totals.add_metric([counted.value], count)
        verified = GaugeMetricFamily(
            "pvegit_host_verify_ok",
            "1 if the newest pvegit verify found no problem",
            labels=["host"],
        )
        verified_at = GaugeMetricFamily(
            "pvegit_host_verify_timestamp_seconds",
            "When the host was last verified",
            labels=["host"],
        )
        for name, outcome in store.verifications().items():
            verified.add_metric([name], 1.0 if outcome.ok else 0.0)
            verified_at.add_metric([name], outcome.at)
        space = disk_space(self._context.home.root)
        storage_free = GaugeMetricFamily(
            "pvegit_storage_free_bytes", "Bytes free on the disk holding PVEGIT_HOME"
        )
        storage_free.add_metric([], space.free)
        storage_size = GaugeMetricFamily(
            "pvegit_storage_size_bytes", "Size of the disk holding PVEGIT_HOME"
        )
        storage_size.add_metric([], space.total)
        hosts_stale = GaugeMetricFamily("pvegit_hosts_stale", "Hosts without a recent backup")
        hosts_stale.add_metric([], stale_count)
        yield from (
            last_success,
            status,
            duration,
            files,
            size,
            changes,
            stale,
            repo,
            totals,
            verified,
            verified_at,
            hosts_stale,
            storage_free,
            storage_size,
        )


def render_metrics(context: Context) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_PvegitCollector(context))
    return generate_latest(registry), CONTENT_TYPE_LATEST
