#!/usr/bin/env python3
"""PostgreSQL peers of the peers-and-limits benchmark (scripts/bench, BENCHMARKS.md
"Peers and limits"). Each subcommand loads the one change stream that
`cargo bench --bench peers -- export` wrote (one JSON line per change, with `stream` and
`version`), prints one JSON document on stdout, and reads the same (stream, version)
points as our store: the line at positions k * n // R for k in 0..R.

- `eventsourcing`: the Python `eventsourcing` library on PostgreSQL. One aggregate per
  entity (stream); each change is one event of its aggregate (the first a `Created`), the
  whole change line as the event's payload. Events are saved with `Application.save(...)`
  of the aggregates a batch touched: one PostgreSQL transaction per batch of N changes.
  Then `repository.get(id, version=v)` at the read points.
- `table`: a plain events table (stream_id text, version int, payload jsonb,
  unique (stream_id, version)), written in batches of N changes, one transaction each, by
  multi-row INSERT over C connections (C processes, batches dealt round robin) or by COPY
  over one connection. Then `SELECT payload ... WHERE stream_id = $1 AND version <= $2
  ORDER BY version` at the read points.

The server's durability is PostgreSQL's default (fsync on, synchronous_commit on): a batch
is acknowledged after its WAL is flushed, as our commit is after its fdatasync.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5


def load(path: str, limit: int | None) -> list[tuple[str, int, str]]:
    """(stream, version, line text) of every change, in stream order."""
    rows: list[tuple[str, int, str]] = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            if limit is not None and len(rows) >= limit:
                break
            line = json.loads(text)
            rows.append((line["stream"], int(line["version"]), text.rstrip("\n")))
    return rows


def read_points(rows: list[tuple[str, int, str]], n_reads: int) -> list[tuple[str, int]]:
    n = len(rows)
    r = min(n_reads, n)
    return [(rows[k * n // r][0], rows[k * n // r][1]) for k in range(r)]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = round((len(sorted_values) - 1) * p)
    return sorted_values[min(idx, len(sorted_values) - 1)]


def peak_rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def conninfo() -> str:
    return os.environ.get("POLE_BENCH_PG", "host=127.0.0.1 port=54329 dbname=bench user=bench")


def server_settings() -> dict[str, str]:
    import psycopg

    names = [
        "server_version", "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes",
        "shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression",
    ]
    with psycopg.connect(conninfo()) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


# --- eventsourcing ------------------------------------------------------------------


def run_eventsourcing(args: argparse.Namespace) -> dict[str, Any]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Entity(Aggregate):
        """One entity's stream: its changes are its events."""

        @staticmethod
        def create_id(stream: str, change: dict[str, Any]) -> UUID:
            return uuid5(NAMESPACE_URL, "pole:" + stream)

        @event("Created")
        def __init__(self, stream: str, change: dict[str, Any]) -> None:
            self.stream = stream
            self.attributes: dict[str, Any] = {}
            self.fold(change)

        @event("Changed")
        def record(self, change: dict[str, Any]) -> None:
            self.fold(change)

        def fold(self, change: dict[str, Any]) -> None:
            op = change.get("change", {}).get("op", {})
            if isinstance(op, dict):
                self.attributes.update(op.get("set", {}) or {})

    class Changes(Application[UUID]):
        pass

    host, port = "127.0.0.1", "54329"
    for part in conninfo().split():
        key, _, value = part.partition("=")
        if key == "host":
            host = value
        elif key == "port":
            port = value
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "bench",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": port,
        "POSTGRES_USER": "bench",
        "POSTGRES_PASSWORD": "",
        "CREATE_TABLE": "y",
    }
    rows = load(args.changes, args.limit)
    parsed = [(stream, version, json.loads(text)) for stream, version, text in rows]
    app = Changes(env=env)
    aggregates: dict[str, Any] = {}
    batch_seconds: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(parsed), args.batch):
        t = time.perf_counter()
        touched: dict[str, Any] = {}
        for stream, _version, change in parsed[start : start + args.batch]:
            agg = aggregates.get(stream)
            if agg is None:
                agg = Entity(stream, change)
                aggregates[stream] = agg
            else:
                agg.record(change)
            touched[stream] = agg
        app.save(*touched.values())
        batch_seconds.append(time.perf_counter() - t)
    seconds = time.perf_counter() - started
    batch_seconds.sort()

    points = read_points(rows, args.reads)
    ids = [(uuid5(NAMESPACE_URL, "pole:" + s), v) for s, v in points]
    for agg_id, version in ids[:200]:
        app.repository.get(agg_id, version=version)
    latencies: list[float] = []
    wrong = 0
    for agg_id, version in ids:
        t = time.perf_counter()
        agg = app.repository.get(agg_id, version=version)
        latencies.append(time.perf_counter() - t)
        if agg.version != version:
            wrong += 1
    latencies.sort()
    size = table_bytes(["stored_events", "changes_events"])
    app.close()
    return {
        "system": "eventsourcing",
        "library": f"eventsourcing {importlib.metadata.version('eventsourcing')}",
        "batch": args.batch,
        "connections": 1,
        "changes": len(parsed),
        "streams": len(aggregates),
        "seconds": seconds,
        "changes_per_second": len(parsed) / seconds,
        "batch_seconds_p50": percentile(batch_seconds, 0.5),
        "batch_seconds_p99": percentile(batch_seconds, 0.99),
        "reads": len(latencies),
        "reads_wrong_version": wrong,
        "read_seconds_p50": statistics.median(latencies) if latencies else float("nan"),
        "read_seconds_p99": percentile(latencies, 0.99),
        "table_bytes": size,
        "peak_rss_kib": peak_rss_kib(),
        "server": server_settings(),
    }


def table_bytes(names: list[str]) -> dict[str, int]:
    import psycopg

    out: dict[str, int] = {}
    with psycopg.connect(conninfo()) as conn:
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchall():
            if any(name.lower() == n or n in name.lower() for n in names):
                size = conn.execute("SELECT pg_total_relation_size(%s)", (name,)).fetchone()
                out[name] = int(size[0]) if size else 0
    return out


# --- plain events table --------------------------------------------------------------

DDL = (
    "DROP TABLE IF EXISTS events",
    "CREATE TABLE events (stream_id text NOT NULL, version int NOT NULL, payload jsonb NOT NULL, "
    "UNIQUE (stream_id, version))",
)


def insert_worker(
    rows: list[tuple[str, int, str]], batch: int, worker: int, workers: int, barrier: Any, out: Any
) -> None:
    import psycopg

    with psycopg.connect(conninfo()) as conn:
        barrier.wait()
        t0 = time.perf_counter()
        latencies: list[float] = []
        n_batches = (len(rows) + batch - 1) // batch
        for b in range(worker, n_batches, workers):
            chunk = rows[b * batch : (b + 1) * batch]
            t = time.perf_counter()
            sql = "INSERT INTO events (stream_id, version, payload) VALUES " + ",".join(
                ["(%s, %s, %s)"] * len(chunk)
            )
            params: list[Any] = []
            for stream, version, text in chunk:
                params.extend((stream, version, text))
            with conn.transaction():
                conn.execute(sql, params)
            latencies.append(time.perf_counter() - t)
        out.put((worker, time.perf_counter() - t0, latencies))


def run_table(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    rows = load(args.changes, args.limit)
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        for statement in DDL:
            conn.execute(statement)
    batch_seconds: list[float] = []
    if args.mode == "copy":
        with psycopg.connect(conninfo()) as conn:
            started = time.perf_counter()
            for start in range(0, len(rows), args.batch):
                t = time.perf_counter()
                with conn.transaction():
                    with conn.cursor().copy("COPY events (stream_id, version, payload) FROM STDIN") as copy:
                        for row in rows[start : start + args.batch]:
                            copy.write_row(row)
                batch_seconds.append(time.perf_counter() - t)
            seconds = time.perf_counter() - started
        connections = 1
    else:
        connections = args.connections
        ctx = mp.get_context("fork")
        barrier = ctx.Barrier(connections + 1)
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=insert_worker, args=(rows, args.batch, w, connections, barrier, queue))
            for w in range(connections)
        ]
        for p in procs:
            p.start()
        barrier.wait()
        started = time.perf_counter()
        results = [queue.get() for _ in procs]
        seconds = time.perf_counter() - started
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise SystemExit(f"insert worker failed with exit code {p.exitcode}")
        for _, _, lat in results:
            batch_seconds.extend(lat)
    batch_seconds.sort()

    points = read_points(rows, args.reads)
    latencies: list[float] = []
    wrong = 0
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute("ANALYZE events")
        count = conn.execute("SELECT count(*) FROM events").fetchone()
        query = "SELECT payload FROM events WHERE stream_id = %s AND version <= %s ORDER BY version"
        for stream, version in points[:200]:
            conn.execute(query, (stream, version), prepare=True).fetchall()
        for stream, version in points:
            t = time.perf_counter()
            got = conn.execute(query, (stream, version), prepare=True).fetchall()
            latencies.append(time.perf_counter() - t)
            if len(got) != version:
                wrong += 1
    latencies.sort()
    return {
        "system": "pg-table",
        "mode": args.mode,
        "batch": args.batch,
        "connections": connections,
        "changes": len(rows),
        "rows_in_table": int(count[0]) if count else 0,
        "seconds": seconds,
        "changes_per_second": len(rows) / seconds,
        "batch_seconds_p50": percentile(batch_seconds, 0.5),
        "batch_seconds_p99": percentile(batch_seconds, 0.99),
        "reads": len(latencies),
        "reads_wrong_version": wrong,
        "read_seconds_p50": statistics.median(latencies) if latencies else float("nan"),
        "read_seconds_p99": percentile(latencies, 0.99),
        "table_bytes": table_bytes(["events"]),
        "peak_rss_kib": peak_rss_kib(),
        "server": server_settings(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("eventsourcing", "table"):
        p = sub.add_parser(name)
        p.add_argument("--changes", required=True, help="the change stream (JSON lines)")
        p.add_argument("--batch", type=int, default=1000)
        p.add_argument("--limit", type=int, default=None, help="use only the first N changes")
        p.add_argument("--reads", type=int, default=2000)
        if name == "table":
            p.add_argument("--mode", choices=("insert", "copy"), default="insert")
            p.add_argument("--connections", type=int, default=1)
    args = parser.parse_args(argv)
    result = run_eventsourcing(args) if args.command == "eventsourcing" else run_table(args)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
