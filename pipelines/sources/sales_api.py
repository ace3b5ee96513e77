"""The partner sales API: a report requested, awaited, fetched, checked and landed per day."""

from __future__ import annotations

import logging
from pathlib import Path

from loaders.sales_api import job as sales_job
from loaders.sales_api.landing import RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext

# Step details go to the task log in Airflow; make run shows only its summary.
log = logging.getLogger(__name__)


def generate_report(ctx: StepContext) -> str:
    return sales_job.request_report()


def get_report(ctx: StepContext) -> tuple[bool, str | None]:
    return sales_job.report_ready(ctx.upstream, wait=ctx.wait)


def get_increment(ctx: StepContext) -> str:
    folder = sales_job.fetch_increment(ctx.upstream, ctx.day)
    log.info("saved the %s increment in %s", ctx.day, folder)
    return str(folder)


def check_files(ctx: StepContext) -> str:
    counts = sales_job.check_folder(Path(ctx.upstream))
    log.info("checked %s: %s", ctx.upstream, counts)
    return ctx.upstream


def load_increment(ctx: StepContext) -> dict:
    return Landed.of(sales_job.land_folder(Path(ctx.upstream), ctx.day))


SOURCE = Source(
    name="sales_api",
    description="Partner sales API increments -> raw_sales_api.* (one logical day at a time)",
    raw_tables=RAW_TABLES,
    steps=(
        Step("generate_report", generate_report),
        Step("get_report", get_report, sensor=True, poke_seconds=10),  # polled every 10 s
        Step("get_increment", get_increment),
        Step("check_files", check_files),
        Step("load", load_increment),
    ),
    daily=True,
    servers=("sales_api",),
)
