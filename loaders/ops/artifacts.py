"""dbt's artifacts into the warehouse's ``raw_ops`` schema, once per invocation.

Every dbt invocation the project runs (``make run`` on each target, Airflow's
Cosmos tasks, ``make dbt``) leaves ``run_results.json``, ``manifest.json``
and, for ``dbt source freshness``, ``sources.json`` in its target folder;
each overwrites the last one's. ``land_artifacts`` keeps them as history:

- ``raw_ops.dbt_invocations``: one row per invocation (its command, target,
  adapter, start, duration, and whether every node passed);
- ``raw_ops.dbt_node_results``: one row per node an invocation ran (status,
  failures, time, rows affected, the message of a failure);
- ``raw_ops.dbt_nodes``: the manifest's node list, once per distinct list
  (its hash is on the invocation), so lineage and tags join to the results;
- ``raw_ops.dbt_source_freshness``: one row per raw table a freshness check read.

Exactly once, like the loaders: an invocation's rows commit in one
transaction keyed by dbt's invocation id, so landing the same folder again
(a rerun, a retried Airflow task) adds nothing, and a crash half-way leaves
nothing to double. Nothing lost either: ``keep`` sets the artifacts aside
under DATA_DIR/ops-pending when the warehouse cannot take them (the next
invocation's artifacts would overwrite them), and the next ``keep`` lands
them first. The ``ops`` dbt models read these tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from config import LocalSettings, WarehouseSettings
from loaders.core.warehouse import LoaderError, connect

DDL = """
create schema if not exists raw_ops;
create table if not exists raw_ops.dbt_invocations (
    invocation_id     text primary key,
    command           text not null,
    target            text not null,
    adapter_type      text not null,
    dbt_version       text not null,
    started_at        timestamptz not null,
    elapsed_seconds   double precision not null,
    success           boolean not null,
    logical_date      date,
    manifest_hash     text,
    args              jsonb not null,
    _loaded_at        timestamptz not null default now()
);
create table if not exists raw_ops.dbt_node_results (
    invocation_id      text not null references raw_ops.dbt_invocations,
    unique_id          text not null,
    resource_type      text not null,
    name               text not null,
    status             text not null,
    failures           integer,
    message            text,
    execution_seconds  double precision not null,
    rows_affected      bigint,
    started_at         timestamptz,
    completed_at       timestamptz,
    primary key (invocation_id, unique_id)
);
create table if not exists raw_ops.dbt_nodes (
    manifest_hash   text not null,
    unique_id       text not null,
    resource_type   text not null,
    name            text not null,
    package_name    text not null,
    schema_name     text,
    alias           text,
    materialized    text,
    tags            text[] not null,
    depends_on      text[] not null,
    attached_node   text,
    primary key (manifest_hash, unique_id)
);
alter table raw_ops.dbt_nodes add column if not exists attached_node text;
create table if not exists raw_ops.dbt_source_freshness (
    invocation_id   text not null references raw_ops.dbt_invocations,
    unique_id       text not null,
    status          text not null,
    max_loaded_at   timestamptz,
    snapshotted_at  timestamptz,
    age_seconds     double precision,
    primary key (invocation_id, unique_id)
);
"""
DDL_LOCK = "select pg_advisory_xact_lock(hashtext('raw_ops.ddl'))"
NODE_KINDS = ("model", "snapshot", "seed", "test", "source", "unit_test", "exposure")
FAILED = ("error", "fail", "runtime error")
ARTIFACTS = ("run_results.json", "sources.json", "manifest.json")


class ArtifactError(LoaderError):
    """Artifacts that are not what dbt writes: kept nowhere, said once (never retried)."""


@dataclass(frozen=True)
class Landed:
    invocations: int = 0  # invocations new to the warehouse (0: landed before)
    nodes: int = 0  # node results (and freshness results) they carried

    def __add__(self, other: Landed) -> Landed:
        return Landed(self.invocations + other.invocations, self.nodes + other.nodes)


def keep(target_dir: Path, target: str, logical_date: str | None = None) -> str:
    """Land ``target_dir``'s artifacts and any set aside before; one line saying what happened.

    A warehouse that cannot take them (down, refusing) sets them aside to land
    with the next invocation's; artifacts that are not dbt's are said and dropped.
    """
    pending = LocalSettings.from_env().data_dir / "ops-pending"
    try:
        with connect(WarehouseSettings.from_env()) as conn:
            landed = land_artifacts(conn, target_dir, target, logical_date)
            landed += _land_pending(conn, pending)
    except ArtifactError as exc:
        return f"warning: {exc}"
    except LoaderError as exc:
        folder = _set_aside(target_dir, target, logical_date, pending)
        where = f"set aside in {folder}, kept with the next invocation's" if folder else "none"
        return f"warning: dbt's artifacts were not kept in raw_ops ({exc}); {where}"
    return f"ops: kept {landed.invocations} dbt invocation(s), {landed.nodes} result(s) in raw_ops"


def keep_invocation(
    dbt_args: list[str],
    target_dir: Path | None = None,
    target: str | None = None,
    logical_date: str | None = None,
) -> str | None:
    """``keep`` for a dbt invocation: its folder and target from its command line
    (``--target-path``, ``--target``/``-t``), else the given ones, else DBT_*;
    its day DBT_LOGICAL_DATE. None when HEALTH_ENABLED=false."""
    from config import DbtSettings, HealthSettings

    if not HealthSettings.from_env().enabled:
        return None
    given = {flag: dbt_args[i + 1] for i, flag in enumerate(dbt_args[:-1])}
    dbt = DbtSettings.from_env()
    return keep(
        target_dir or Path(given.get("--target-path") or dbt.target_path),
        target or given.get("--target") or given.get("-t") or dbt.target,
        logical_date or os.environ.get("DBT_LOGICAL_DATE"),
    )


def _set_aside(target_dir: Path, target: str, day: str | None, pending: Path) -> Path | None:
    found = [target_dir / name for name in ARTIFACTS if (target_dir / name).is_file()]
    if not found:
        return None
    folder = pending / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    for path in found:
        shutil.copy2(path, folder / path.name)
    (folder / "kept.json").write_text(json.dumps({"target": target, "logical_date": day}))
    return folder


def _land_pending(conn: psycopg.Connection, pending: Path) -> Landed:
    """Artifacts set aside earlier, oldest first; each folder removed once landed."""
    landed = Landed()
    for folder in sorted(p for p in pending.glob("*") if p.is_dir() and p.suffix != ".bad"):
        try:
            meta = json.loads((folder / "kept.json").read_text())
            landed += land_artifacts(conn, folder, meta["target"], meta.get("logical_date"))
        except (ArtifactError, OSError, ValueError, KeyError):
            folder.rename(folder.with_suffix(".bad"))  # looked at by a person, never retried
            continue
        shutil.rmtree(folder)
    return landed


def ensure_ops_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(DDL_LOCK)  # two first landings at once must not race on CREATE
        conn.execute(DDL)


def _read(path: Path) -> dict[str, Any] | None:
    """An artifact's JSON; None if it is missing. Unreadable: one clear error."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"dbt artifact {path} cannot be read: {exc}") from None


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _manifest_nodes(manifest: dict[str, Any]) -> tuple[str, list[tuple]]:
    """The manifest's node list as rows, and a hash of it (equal lists share their rows)."""
    rows = []
    for group in ("nodes", "sources", "exposures", "unit_tests"):
        for uid, node in (manifest.get(group) or {}).items():
            if node.get("resource_type") not in NODE_KINDS:
                continue
            depends = (node.get("depends_on") or {}).get("nodes") or []
            rows.append((
                uid,
                node["resource_type"],
                node.get("name", uid),
                node.get("package_name", ""),
                node.get("schema"),
                node.get("alias") or node.get("identifier"),
                (node.get("config") or {}).get("materialized"),
                sorted(node.get("tags") or []),
                sorted(depends),
                node.get("attached_node"),  # a test's model (depends_on may list others)
            ))  # fmt: skip
    rows.sort()
    digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:32]
    return digest, rows


def _timing(result: dict[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    for step in result.get("timing") or []:
        if step.get("name") == "execute":
            return _time(step.get("started_at")), _time(step.get("completed_at"))
    return None, None


def _invocation(
    conn: psycopg.Connection,
    meta: dict[str, Any],
    artifact: dict[str, Any],
    command: str,
    target: str,
    adapter_type: str,
    success: bool,
    manifest_hash: str | None,
    logical_date: str | None,
) -> bool:
    """Claim the invocation's row; False if it landed before (nothing else is written)."""
    args = artifact.get("args") or {}
    row = conn.execute(
        "insert into raw_ops.dbt_invocations (invocation_id, command, target, adapter_type,"
        " dbt_version, started_at, elapsed_seconds, success, logical_date, manifest_hash, args)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (invocation_id) do nothing returning invocation_id",
        (
            meta["invocation_id"],
            command,
            target,
            adapter_type,
            meta.get("dbt_version", ""),
            _time(meta.get("invocation_started_at") or meta.get("generated_at")),
            float(artifact.get("elapsed_time") or 0.0),
            success,
            logical_date or None,
            manifest_hash,
            Jsonb({k: args[k] for k in ("select", "exclude", "selector", "vars") if k in args}),
        ),
    ).fetchone()
    return row is not None


def land_artifacts(
    conn: psycopg.Connection, target_dir: Path, target: str, logical_date: str | None = None
) -> Landed:
    """Land the invocation(s) whose artifacts are in ``target_dir`` (a dbt target folder).

    ``target``: the profile target it ran on (dbt's artifacts name it only when
    it was given on the command line). A folder with no artifacts lands nothing.
    """
    ensure_ops_tables(conn)
    try:
        return _land(conn, target_dir, target, logical_date)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        conn.rollback()
        raise ArtifactError(
            f"dbt's artifacts in {target_dir} are not what dbt writes ({type(exc).__name__}:"
            f" {exc}); nothing of them was kept"
        ) from None


def _land(
    conn: psycopg.Connection, target_dir: Path, target: str, logical_date: str | None
) -> Landed:
    manifest = _read(target_dir / "manifest.json") or {}
    adapter_type = (manifest.get("metadata") or {}).get("adapter_type", "unknown")
    landed = Landed()
    # Freshness first: `dbt source freshness` may write run_results.json too,
    # under the same invocation id, without the loaded-at times.
    sources = _read(target_dir / "sources.json")
    if sources is not None:
        landed = _land_freshness(conn, sources, target, adapter_type, logical_date)
    run_results = _read(target_dir / "run_results.json")
    if run_results is not None:
        more = _land_run_results(conn, run_results, manifest, target, adapter_type, logical_date)
        landed += more
    return landed


def _land_run_results(
    conn: psycopg.Connection,
    artifact: dict[str, Any],
    manifest: dict[str, Any],
    target: str,
    adapter_type: str,
    logical_date: str | None,
) -> Landed:
    invocation_id = artifact["metadata"]["invocation_id"]
    manifest_hash, node_rows = (None, [])
    if (manifest.get("metadata") or {}).get("invocation_id") == invocation_id:
        manifest_hash, node_rows = _manifest_nodes(manifest)
    command = (artifact.get("args") or {}).get("which", "unknown")
    inserts = [
        (
            "insert into raw_ops.dbt_nodes (manifest_hash, unique_id, resource_type,"
            " name, package_name, schema_name, alias, materialized, tags, depends_on,"
            " attached_node) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict do nothing",
            [(manifest_hash, *row) for row in node_rows],
        ),
        (
            "insert into raw_ops.dbt_node_results (invocation_id, unique_id, resource_type,"
            " name, status, failures, message, execution_seconds, rows_affected,"
            " started_at, completed_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict do nothing",
            [_node_result(invocation_id, r) for r in artifact.get("results") or []],
        ),
    ]
    invocation = (command, target, adapter_type, manifest_hash, logical_date)
    return _land_invocation(conn, artifact, invocation, inserts)


def _land_invocation(
    conn: psycopg.Connection,
    artifact: dict[str, Any],
    invocation: tuple[str, str, str, str | None, str | None],
    inserts: list[tuple[str, list[tuple]]],
) -> Landed:
    """The invocation's row and its rows, in one transaction; nothing if it landed before."""
    results = artifact.get("results") or []
    # dbt's own verdict: only an error or a failure fails it (a warning does not).
    success = not any(r.get("status") in FAILED for r in results)
    command, target, adapter_type, manifest_hash, logical_date = invocation
    with conn.transaction():
        if not _invocation(
            conn, artifact["metadata"], artifact, command, target, adapter_type, success,
            manifest_hash, logical_date,
        ):  # fmt: skip
            return Landed()
        with conn.cursor() as cur:
            for statement, rows in inserts:
                if rows:
                    cur.executemany(statement, rows)
    return Landed(1, len(results))


def _node_result(invocation_id: str, r: dict[str, Any]) -> tuple:
    uid = r["unique_id"]
    kind, _, rest = uid.partition(".")
    parts = rest.split(".")[1:]  # after the package: model.pkg.<name>, test.pkg.<name>.<hash>
    name = ".".join(parts) if kind in ("source", "unit_test") else (parts or [uid])[0]
    started, completed = _timing(r)
    rows = (r.get("adapter_response") or {}).get("rows_affected")
    status = r.get("status") or "unknown"
    message = r.get("message")
    return (
        invocation_id,
        uid,
        kind,
        name,
        status,
        r.get("failures"),
        # Only a failure's message is worth keeping ("SELECT 1" is not).
        message[:2000] if message and status in ("error", "fail", "warn") else None,
        float(r.get("execution_time") or 0.0),
        rows if isinstance(rows, int) and rows >= 0 else None,
        started,
        completed,
    )


def _land_freshness(
    conn: psycopg.Connection,
    artifact: dict[str, Any],
    target: str,
    adapter_type: str,
    logical_date: str | None,
) -> Landed:
    invocation_id = artifact["metadata"]["invocation_id"]
    rows = [
        (
            invocation_id,
            r["unique_id"],
            r.get("status") or "unknown",
            _time(r.get("max_loaded_at")),
            _time(r.get("snapshotted_at")),
            r.get("max_loaded_at_time_ago_in_s"),
        )
        for r in artifact.get("results") or []
    ]
    insert = (
        "insert into raw_ops.dbt_source_freshness (invocation_id, unique_id, status,"
        " max_loaded_at, snapshotted_at, age_seconds) values (%s, %s, %s, %s, %s, %s)"
        " on conflict do nothing"
    )
    invocation = ("source freshness", target, adapter_type, None, logical_date)
    return _land_invocation(conn, artifact, invocation, [(insert, rows)])
