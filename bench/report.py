#!/usr/bin/env python3
"""Turns the raw runs of scripts/bench (target/bench/raw/*.json, one per measurement, each
with the load average before and after) into target/bench/results.json (everything, plus
the machine, a per-size summary and the growth series) and target/bench/summary.md (tables
per size, each of ours as a ratio to each peer, computed repetition by repetition from runs
made back to back, then the median, and growth tables: one measure per table, one row per
data size). results.json's `growth.plots` is what bench/plots draws: this file decides what
each plot holds, so that the plotting program stays a drawing routine."""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import re
import statistics
import subprocess
from typing import Any

OURS_KEYS = [("sled", 100), ("sled", 1000), ("redb", 100), ("redb", 1000)]


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return ""


def machine(pg_bin: str, data: str) -> dict[str, Any]:
    return {
        "nproc": sh("nproc"),
        "lscpu": sh("lscpu | head -16"),
        "memory": sh("free -h | head -2"),
        "disk": sh(f"df -hT {os.path.dirname(data) or '/'} | tail -1"),
        "block_devices": sh("lsblk -d -o NAME,SIZE,ROTA,TYPE 2>/dev/null"),
        "kernel": sh("uname -r"),
        "rustc": sh("rustc --version"),
        "postgresql": sh(f"{pg_bin}/postgres --version"),
        "python": sh("python3 --version"),
        "commit": sh("git rev-parse --short HEAD"),
        "dirty": bool(sh("git status --porcelain --untracked-files=no")),
    }


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}"


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1000:.3f}" if x < 0.01 else f"{x * 1000:.1f}"


def spread(values: list[float]) -> tuple[float | None, str]:
    """Median and, for several values, the range."""
    values = [v for v in values if v is not None]
    if not values:
        return None, ""
    med = statistics.median(values)
    if len(values) == 1:
        return med, ""
    return med, f" ({fmt_rate(min(values))}–{fmt_rate(max(values))})"


def rss_cell(rs: list[dict[str, Any]]) -> str:
    """Peak RSS, with the harness's parsed stream's share where it was recorded."""
    peak = max(y["peak_rss_kib"] for y in rs) / 1024
    parsed = [y["peak_rss_kib_after_parse"] for y in rs if "peak_rss_kib_after_parse" in y]
    if parsed:
        return f"{peak:.0f} (stream {max(parsed) / 1024:.0f})"
    return f"{peak:.0f}"


BACKENDS = ("sled", "redb")
BATCHES = (1, 100, 1000)
READ_KINDS = {
    "at_version": "`entity_at_version`, 2,000 points over the stream",
    "as_of_100_versions": "as of a random instant, entity with 100 versions",
    "now_100_versions": "now, the same entity",
    "entity_now_spread": "now, by id, people spread over the store",
}
HTTP_CALLERS = [("read", "admin"), ("read", "analyst"), ("read", "council"), ("read", "consumer"),
                ("search", "admin"), ("graphql", "admin")]
HTTP_LABELS = {
    ("read", "admin"): "read by id, admin",
    ("read", "analyst"): "read by id, analyst",
    ("read", "council"): "read by id, council",
    ("read", "consumer"): "read by id, consumer",
    ("search", "admin"): "NHS number search",
    ("graphql", "admin"): "GraphQL two-hop",
}
# The peers the growth tables and plots follow (all of them are in the per-size tables).
GROWTH_PEERS = {
    "eventsourcing-b1000": "eventsourcing, 1,000",
    "pgtable-insert-b1000-c1": "table INSERT 1,000 × 1",
    "pgtable-insert-b1000-c4": "table INSERT 1,000 × 4",
    "pgtable-copy-b1000": "table COPY 1,000",
    "limits-sled-b1000-f1": "raw sled 1,000 flush",
    "limits-redb-b1000-f1": "raw redb 1,000 durable",
    "limits-redb-b1000-f0": "raw redb 1,000 non-durable",
}


def median_of(xs: list[Any]) -> float | None:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def http_rows(res: Any, n: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The wrk rows of a size's HTTP run (first repetition) and its demo load."""
    doc = res(f"n{n}-r1-http")
    if not doc:
        return [], {}
    return doc.get("results", []), (doc.get("demo_load") or {}).get("load", {})


def per_size_new_workloads(md: list[str], n: int, reps: list[int], res: Any, by_name: dict[str, Any]) -> None:
    """Tables of one size for reads in process, files end to end and HTTP."""
    md.append("### Ours: reads in process (in the batch-of-1,000 store; median of repetitions)\n")
    md.append("| backend | read | reads | p50 ms | p90 ms | p99 ms | load before |")
    md.append("|---|---|---|---|---|---|---|")
    for backend in BACKENDS:
        ing = [x for x in (res(f"n{n}-r{r}-ours-{backend}-b1000") for r in reps) if x]
        if ing:
            md.append(
                f"| {backend} | {READ_KINDS['at_version']} | {ing[0]['reads']:,} | "
                f"{fmt_ms(median_of([x['read_seconds_p50'] for x in ing]))} | – | "
                f"{fmt_ms(median_of([x['read_seconds_p99'] for x in ing]))} | "
                f"{', '.join(by_name[f'n{n}-r{r}-ours-{backend}-b1000']['load_before'] for r in reps)} |"
            )
        asof = [x for x in (res(f"n{n}-r{r}-ours-{backend}-asof") for r in reps) if x]
        if not asof:
            if any(f"n{n}-r{r}-ours-{backend}-asof" in by_name for r in reps):
                md.append(f"| {backend} | as-of reads | **failed** (see results.json) | | | | |")
            continue
        loads = ", ".join(by_name[f"n{n}-r{r}-ours-{backend}-asof"]["load_before"] for r in reps if res(f"n{n}-r{r}-ours-{backend}-asof"))
        for kind in ("as_of_100_versions", "now_100_versions", "entity_now_spread"):
            xs = [x[kind] for x in asof]
            md.append(
                f"| {backend} | {READ_KINDS[kind]} | {xs[0]['reads']:,} | {fmt_ms(median_of([x['seconds_p50'] for x in xs]))} | "
                f"{fmt_ms(median_of([x['seconds_p90'] for x in xs]))} | {fmt_ms(median_of([x['seconds_p99'] for x in xs]))} | {loads} |"
            )
    md.append("")
    md.append("DESIGN.md's as-of target is a p99 under 1 ms for an entity with 100 versions.\n")

    md.append("### Files end to end: `cargo bench --bench ingest` (parse, map, validate, commit; redb)\n")
    md.append("| format | rows | changes | transactions | rows/s | changes/s | file MiB | peak RSS MiB | load before |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for fmt in ("csv", "hl7"):
        xs = [x for x in (res(f"n{n}-r{r}-file-{fmt}") for r in reps) if x]
        if not xs:
            if any(f"n{n}-r{r}-file-{fmt}" in by_name for r in reps):
                md.append(f"| {fmt} | **failed** (see results.json) | | | | | | | |")
            continue
        first = xs[0][0]
        rate, rng = spread([x[0]["rows_per_second"] for x in xs])
        loads = ", ".join(by_name[f"n{n}-r{r}-file-{fmt}"]["load_before"] for r in reps if res(f"n{n}-r{r}-file-{fmt}"))
        md.append(
            f"| {fmt} | {first['rows']:,} | {first['changes']:,} | {first['transactions']:,} | **{fmt_rate(rate)}**{rng} | "
            f"{fmt_rate(median_of([x[0]['changes_per_second'] for x in xs]))} | {first['file_mib']:.1f} | "
            f"{max(x[0]['peak_rss_mib'] for x in xs):.0f} | {loads} |"
        )
    md.append("")
    md.append(
        "CSV: the safeguarding data set, about n / 5 rows (4.7 changes a row), committed a chunk "
        "of 10,000 rows at a time. HL7: ADT messages, one transaction a message (up to 1,024 in "
        "flight), n / 3 messages up to 1,000,000.\n"
    )

    rows, load = http_rows(res, n)
    if f"n{n}-r1-http" in by_name:
        md.append("### HTTP: `scripts/bench-http` (wrk on loopback, demo data of this size on redb)\n")
        if not rows:
            md.append("**Failed** (see results.json).\n")
            return
        doc = res(f"n{n}-r1-http")
        if load:
            md.append(
                f"Loaded by `pole-ods demo --changes {n}`: {load.get('changes', 0):,} changes in "
                f"{load.get('seconds', 0):.1f} s (**{fmt_rate(load.get('changes_per_second'))}** changes/s, "
                f"32 transactions in flight); data directory {doc.get('data_bytes', 0) / 1e6:.1f} MB; "
                f"{doc.get('duration_s')} s per measurement; load before {by_name[f'n{n}-r1-http']['load_before']}.\n"
            )
        if doc.get("server_peak_rss_mib") is not None:
            md.append(
                f"Server resident memory after the workloads: {doc['server_rss_mib']:.0f} MiB "
                f"(peak {doc['server_peak_rss_mib']:.0f} MiB; target under 1 GiB at 10 million changes).\n"
            )
        md.append("| workload | caller | connections | requests/s | p50 ms | p90 ms | p99 ms | errors | ÷ admin |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            md.append(
                f"| {row['workload']} | {row['caller']} | {row['connections']} | **{fmt_rate(row['requests_per_second'])}** | "
                f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} | "
                f"{row.get('throughput_vs_admin', '–')} |"
            )
        md.append("")


def size_metrics(n: int, reps: list[int], res: Any, peer_labels: dict[str, str]) -> dict[str, float]:
    """Every measure of one size as a flat name → value (medians of repetitions); what the
    growth tables and plots are made of. Missing measurements are left out."""
    out: dict[str, float | None] = {}

    def each(name: str) -> list[dict[str, Any]]:
        return [x for x in (res(f"n{n}-r{r}-{name}") for r in reps) if x]

    for backend in BACKENDS:
        for batch in BATCHES:
            xs = each(f"ours-{backend}-b{batch}")
            out[f"ours.{backend}.b{batch}.changes_per_second"] = median_of([x["changes_per_second"] for x in xs])
            out[f"ours.{backend}.b{batch}.commit_p50_ms"] = median_of([x["commit_seconds_p50"] * 1e3 for x in xs])
            out[f"ours.{backend}.b{batch}.commit_p99_ms"] = median_of([x["commit_seconds_p99"] * 1e3 for x in xs])
            out[f"ours.{backend}.b{batch}.peak_rss_mib"] = median_of([x["peak_rss_kib"] / 1024 for x in xs])
        xs = each(f"ours-{backend}-b1000")
        out[f"read.{backend}.at_version.p50_ms"] = median_of([x["read_seconds_p50"] * 1e3 for x in xs])
        out[f"read.{backend}.at_version.p99_ms"] = median_of([x["read_seconds_p99"] * 1e3 for x in xs])
        jj = median_of([x["journal_json_bytes"] for x in xs])
        disk = median_of([x["footprint"]["total_allocated_bytes"] for x in xs])
        out[f"footprint.{backend}.journal_json_mb"] = jj / 1e6 if jj else None
        out[f"footprint.{backend}.store_mb"] = disk / 1e6 if disk else None
        out[f"footprint.{backend}.ratio"] = disk / jj if disk and jj else None
        asof = each(f"ours-{backend}-asof")
        for kind in ("as_of_100_versions", "now_100_versions", "entity_now_spread"):
            out[f"read.{backend}.{kind}.p50_ms"] = median_of([x[kind]["seconds_p50"] * 1e3 for x in asof])
            out[f"read.{backend}.{kind}.p99_ms"] = median_of([x[kind]["seconds_p99"] * 1e3 for x in asof])
        rb = each(f"ours-{backend}-rebuild")
        out[f"rebuild.{backend}.changes_per_second"] = median_of([x["changes_per_second"] for x in rb])
        out[f"rebuild.{backend}.digest_seconds"] = median_of([x["digest_seconds"] for x in rb if "digest_seconds" in x])
        out[f"rebuild.{backend}.peak_rss_mib"] = median_of([x["peak_rss_kib"] / 1024 for x in rb])
        after = median_of([x["footprint_after_rebuild"]["total_allocated_bytes"] for x in rb if "footprint_after_rebuild" in x])
        out[f"footprint.{backend}.after_rebuild_ratio"] = after / jj if after and jj else None
    for fmt in ("csv", "hl7"):
        xs = [x[0] for x in each(f"file-{fmt}") if isinstance(x, list) and x]
        out[f"file.{fmt}.rows_per_second"] = median_of([x["rows_per_second"] for x in xs])
        out[f"file.{fmt}.changes_per_second"] = median_of([x["changes_per_second"] for x in xs])
        out[f"file.{fmt}.peak_rss_mib"] = median_of([x["peak_rss_mib"] for x in xs])
    rows, load = http_rows(res, n)
    out["demo.changes_per_second"] = load.get("changes_per_second") if load else None
    out["serve.peak_rss_mib"] = (res(f"n{n}-r1-http") or {}).get("server_peak_rss_mib")
    for row in rows:
        key = f"http.{row['workload']}.{row['caller']}.c{row['connections']}"
        out[f"{key}.requests_per_second"] = row["requests_per_second"]
        out[f"{key}.p50_ms"] = row["p50_ms"]
        out[f"{key}.p99_ms"] = row["p99_ms"]
    for suffix in peer_labels:
        xs = each(suffix)
        out[f"peer.{suffix}.changes_per_second"] = median_of([x["changes_per_second"] for x in xs])
        out[f"peer.{suffix}.read_p50_ms"] = median_of([x["read_seconds_p50"] * 1e3 for x in xs if x.get("read_seconds_p50") is not None])
        out[f"peer.{suffix}.read_p99_ms"] = median_of([x["read_seconds_p99"] * 1e3 for x in xs if x.get("read_seconds_p99") is not None])
        for backend, batch in OURS_KEYS:
            per_rep = []
            for r in reps:
                ours, peer = res(f"n{n}-r{r}-ours-{backend}-b{batch}"), res(f"n{n}-r{r}-{suffix}")
                if ours and peer and peer.get("changes_per_second"):
                    per_rep.append(ours["changes_per_second"] / peer["changes_per_second"])
            out[f"ratio.{backend}.b{batch}.{suffix}"] = median_of(per_rep)
    return {k: v for k, v in out.items() if v is not None}


def fmt_val(x: float | None, kind: str) -> str:
    if x is None:
        return "–"
    if kind == "rate":
        return fmt_rate(x)
    if kind == "ratio":
        return f"{x:.2f}"
    if kind == "x":
        return f"{x:.1f}x"
    if kind == "mib":
        return f"{x:,.0f}"
    if kind == "mb":
        return f"{x:,.1f}"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"  # ms


def growth_tables(md: list[str], sizes: list[int], metrics: dict[int, dict[str, float]], skipped: list[int]) -> None:
    """One table per measure: a row per data size, so that how each cost grows is read
    down a column."""
    md.append("## Growth: each measure against the data size\n")
    if skipped:
        md.append("Sizes skipped (disk too small): " + ", ".join(f"{n:,}" for n in skipped) + ".\n")
    if not sizes:
        md.append("No size was measured.\n")
        return

    def table(title: str, columns: list[tuple[str, str, str]], note: str = "") -> None:
        present = [c for c in columns if any(c[1] in metrics[n] for n in sizes)]
        if not present:
            return
        md.append(f"### {title}\n")
        md.append("| changes asked | " + " | ".join(c[0] for c in present) + " |")
        md.append("|---|" + "---|" * len(present))
        for n in sizes:
            md.append(f"| {n:,} | " + " | ".join(fmt_val(metrics[n].get(c[1]), c[2]) for c in present) + " |")
        md.append("")
        if note:
            md.append(note + "\n")

    table("Durable ingest through `Store::commit` (changes/s)",
          [(f"{b} N={k:,}", f"ours.{b}.b{k}.changes_per_second", "rate") for b in BACKENDS for k in BATCHES]
          + [("`pole-ods demo` (redb, 32 in flight)", "demo.changes_per_second", "rate")],
          "N = 1 runs the first 20,000 changes only.")
    table("Commit latency, p50 / p99 ms",
          [(f"{b} N={k:,} {p}", f"ours.{b}.b{k}.commit_{p}_ms", "ms") for b in BACKENDS for k in (100, 1000) for p in ("p50", "p99")])
    table("Files end to end (redb)",
          [("CSV rows/s", "file.csv.rows_per_second", "rate"), ("CSV changes/s", "file.csv.changes_per_second", "rate"),
           ("HL7 messages/s", "file.hl7.rows_per_second", "rate"), ("HL7 changes/s", "file.hl7.changes_per_second", "rate")],
          "CSV rows are about n / 5 (n changes); HL7 messages n / 3, at most 1,000,000.")
    for kind, label in READ_KINDS.items():
        table(f"Read in process: {label} (ms)",
              [(f"{b} {p}", f"read.{b}.{kind}.{p}_ms", "ms") for b in BACKENDS for p in ("p50", "p99")])
    table("Rebuild (changes/s) and the digest that checks it (s)",
          [(b, f"rebuild.{b}.changes_per_second", "rate") for b in BACKENDS]
          + [(f"{b} digest s", f"rebuild.{b}.digest_seconds", "s") for b in BACKENDS],
          "Rebuild: drop, replay, flush; the digest over every projection is timed apart. "
          "The sled rebuild is skipped above 1,000,000 changes unless POLE_BENCH_SLED_REBUILD=1.")
    table("Disk footprint ÷ the journal's raw JSON (after the batch-of-1,000 load; target under 3x)",
          [(f"{b} ratio", f"footprint.{b}.ratio", "x") for b in BACKENDS]
          + [(f"{b} ratio after rebuild", f"footprint.{b}.after_rebuild_ratio", "x") for b in BACKENDS]
          + [(f"{b} store MB", f"footprint.{b}.store_mb", "mb") for b in BACKENDS]
          + [("journal JSON MB", "footprint.redb.journal_json_mb", "mb")])
    table("Peak resident memory (MiB, `VmHWM` of each harness process)",
          [(f"{b} ingest N=1,000", f"ours.{b}.b1000.peak_rss_mib", "mib") for b in BACKENDS]
          + [(f"{b} rebuild", f"rebuild.{b}.peak_rss_mib", "mib") for b in BACKENDS]
          + [("CSV file", "file.csv.peak_rss_mib", "mib"), ("HL7 file", "file.hl7.peak_rss_mib", "mib"),
             ("`pole-ods serve` after the HTTP workloads", "serve.peak_rss_mib", "mib")],
          "Ingest's peak includes the harness's parsed change stream (see the per-size tables).")
    conns = sorted({int(k.split(".")[3][1:]) for n in sizes for k in metrics[n] if k.startswith("http.")})
    for c in conns:
        md.append(f"### HTTP at {c} connection(s): requests/s (p50 / p99 ms)\n")
        md.append("| changes asked | " + " | ".join(HTTP_LABELS[wr] for wr in HTTP_CALLERS) + " |")
        md.append("|---|" + "---|" * len(HTTP_CALLERS))
        for n in sizes:
            cells = []
            for w, r in HTTP_CALLERS:
                key = f"http.{w}.{r}.c{c}"
                if f"{key}.requests_per_second" not in metrics[n]:
                    cells.append("–")
                    continue
                cells.append(
                    f"{fmt_rate(metrics[n][f'{key}.requests_per_second'])} "
                    f"({fmt_val(metrics[n][f'{key}.p50_ms'], 'ms')} / {fmt_val(metrics[n][f'{key}.p99_ms'], 'ms')})"
                )
            md.append(f"| {n:,} | " + " | ".join(cells) + " |")
        md.append("")
    table("Peers and limits (changes/s)",
          [(label, f"peer.{suffix}.changes_per_second", "rate") for suffix, label in GROWTH_PEERS.items()])
    table("Ours (redb, N = 1,000) ÷ each peer, changes/s",
          [(label, f"ratio.redb.b1000.{suffix}", "ratio") for suffix, label in GROWTH_PEERS.items()])
    table("Ours (sled, N = 1,000) ÷ each peer, changes/s",
          [(label, f"ratio.sled.b1000.{suffix}", "ratio") for suffix, label in GROWTH_PEERS.items()])


def plots(sizes: list[int], metrics: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """What bench/plots draws: a plot is a title, a y label and series of (size, value)."""

    def series(label: str, key: str, secondary: bool = False) -> dict[str, Any]:
        return {"label": label, "secondary": secondary,
                "points": [[n, metrics[n][key]] for n in sizes if key in metrics[n]]}

    def p50_p99(label: str, prefix: str) -> list[dict[str, Any]]:
        return [series(f"{label} p50", f"{prefix}.p50_ms"), series(f"{label} p99", f"{prefix}.p99_ms", True)]

    http_conns = sorted({int(k.split(".")[3][1:]) for n in sizes for k in metrics[n] if k.startswith("http.")})
    http_latency_conns = 16 if 16 in http_conns else (http_conns[-1] if http_conns else 16)
    out = [
        {"id": "ingest_throughput", "title": "Durable ingest: ours and peers", "y_label": "changes/s", "log_y": True,
         "series": [series(f"ours {b} N={k:,}", f"ours.{b}.b{k}.changes_per_second") for b in BACKENDS for k in BATCHES]
         + [series(label, f"peer.{suffix}.changes_per_second") for suffix, label in GROWTH_PEERS.items()]},
        {"id": "file_ingest_throughput", "title": "Ingest end to end: files and the demo load (redb)",
         "y_label": "per second", "log_y": True,
         "series": [series("CSV rows/s", "file.csv.rows_per_second"), series("CSV changes/s", "file.csv.changes_per_second"),
                    series("HL7 messages/s", "file.hl7.rows_per_second"),
                    series("pole-ods demo changes/s", "demo.changes_per_second")]},
        {"id": "read_latency_in_process", "title": "Reads in process (p50 ●, p99 ▲)", "y_label": "ms", "log_y": True,
         "series": [s for b in BACKENDS for kind in ("at_version", "as_of_100_versions", "entity_now_spread")
                    for s in p50_p99(f"{b} {kind.replace('_', ' ')}", f"read.{b}.{kind}")]},
        {"id": "read_latency_http", "title": f"Reads over HTTP at {http_latency_conns} connections (p50 ●, p99 ▲)",
         "y_label": "ms", "log_y": True,
         "series": [s for w, r in HTTP_CALLERS for s in p50_p99(HTTP_LABELS[(w, r)], f"http.{w}.{r}.c{http_latency_conns}")]},
        {"id": "http_throughput", "title": "HTTP throughput", "y_label": "requests/s", "log_y": True,
         "series": [series(f"{HTTP_LABELS[(w, r)]}, {c} conn.", f"http.{w}.{r}.c{c}.requests_per_second")
                    for c in http_conns for w, r in (("read", "admin"), ("search", "admin"), ("graphql", "admin"))]},
        {"id": "rebuild_throughput", "title": "Rebuild from the journal", "y_label": "changes/s", "log_y": True,
         "series": [series(b, f"rebuild.{b}.changes_per_second") for b in BACKENDS]},
        {"id": "footprint_ratio", "title": "Disk footprint ÷ the journal's raw JSON", "y_label": "ratio", "log_y": False,
         "series": [series(b, f"footprint.{b}.ratio") for b in BACKENDS]
         + [{"label": "target (3x)", "secondary": False, "points": [[n, 3.0] for n in sizes]}]},
        {"id": "peak_rss", "title": "Peak resident memory", "y_label": "MiB", "log_y": True,
         "series": [series(f"{b} ingest N=1,000", f"ours.{b}.b1000.peak_rss_mib") for b in BACKENDS]
         + [series(f"{b} rebuild", f"rebuild.{b}.peak_rss_mib") for b in BACKENDS]
         + [series("CSV file", "file.csv.peak_rss_mib"), series("HL7 file", "file.hl7.peak_rss_mib")]},
    ]
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--pg-bin", default="")
    p.add_argument("--data", default="/tmp/pole-bench")
    a = p.parse_args()

    runs: list[dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(a.raw, "*.json"))):
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    by_name = {r["name"]: r for r in runs}
    sizes = [int(s) for s in a.sizes.split()]

    def res(name: str) -> dict[str, Any] | None:
        r = by_name.get(name)
        if r is None or "error" in r["result"]:
            return None
        return r["result"]

    def reps_of(n: int) -> list[int]:
        out = set()
        for name in by_name:
            m = re.match(rf"n{n}-r(\d+)-", name)
            if m:
                out.add(int(m.group(1)))
        return sorted(out)

    # Peers: name suffix -> label.
    peer_labels = {
        "eventsourcing-b100": "eventsourcing on PostgreSQL, batches of 100",
        "eventsourcing-b1000": "eventsourcing on PostgreSQL, batches of 1,000",
        "pgtable-insert-b100-c1": "events table, INSERT × 100 rows, 1 connection",
        "pgtable-insert-b1000-c1": "events table, INSERT × 1,000 rows, 1 connection",
        "pgtable-insert-b100-c4": "events table, INSERT × 100 rows, 4 connections",
        "pgtable-insert-b1000-c4": "events table, INSERT × 1,000 rows, 4 connections",
        "pgtable-copy-b1000": "events table, COPY 1,000 rows per transaction",
        "limits-sled-b100-f1": "raw sled, 100 changes (300 keys) per batch, flush each",
        "limits-sled-b1000-f1": "raw sled, 1,000 changes per batch, flush each",
        "limits-sled-b100-f0": "raw sled, 100 changes per batch, no flush",
        "limits-sled-b1000-f0": "raw sled, 1,000 changes per batch, no flush",
        "limits-redb-b100-f1": "raw redb, 100 changes per batch, durable commit",
        "limits-redb-b1000-f1": "raw redb, 1,000 changes per batch, durable commit",
        "limits-redb-b100-f0": "raw redb, 100 changes per batch, non-durable commit",
        "limits-redb-b1000-f0": "raw redb, 1,000 changes per batch, non-durable commit",
    }

    md: list[str] = []
    m = machine(a.pg_bin, a.data)
    md.append(f"# Benchmark suite ({a.mode}): peers, limits and growth\n")
    md.append(
        f"Generated {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `scripts/bench --{a.mode}` "
        f"at commit `{m['commit']}`{' (working tree modified)' if m['dirty'] else ''}; "
        f"{m['nproc']} CPUs; {m['postgresql']}. Load averages (1, 5, 15 min) are the machine's "
        "before each measurement. Rates are changes per second, durable (acknowledged after "
        "fdatasync or PostgreSQL's WAL flush) unless marked otherwise; with several repetitions, "
        "the median and (range).\n"
    )
    fs = res("disk-fsync")
    if fs:
        s, b = fs["append_4kib_fdatasync"], fs["append_1mib_fdatasync"]
        md.append("## Disk: synchronous writes\n")
        md.append("| write + fdatasync | syncs/s | MiB/s | p50 ms | p99 ms | load before |")
        md.append("|---|---|---|---|---|---|")
        load = by_name["disk-fsync"]["load_before"]
        md.append(f"| 4 KiB append | {fmt_rate(s['syncs_per_second'])} | {s['mib_per_second']:.1f} | {fmt_ms(s['seconds_p50'])} | {fmt_ms(s['seconds_p99'])} | {load} |")
        md.append(f"| 1 MiB append | {fmt_rate(b['syncs_per_second'])} | {b['mib_per_second']:.1f} | {fmt_ms(b['seconds_p50'])} | {fmt_ms(b['seconds_p99'])} | {load} |")
        md.append("")

    summary: dict[str, Any] = {}
    for n in sizes:
        reps = reps_of(n)
        skipped = by_name.get(f"n{n}-skipped")
        if skipped:
            md.append(f"## {n:,} changes: skipped\n")
            md.append(f"Not run: {skipped['result']['skipped']}.\n")
            continue
        exp = res(f"n{n}-export")
        if not reps:
            continue
        md.append(f"## {n:,} changes asked of the demo generator\n")
        if exp:
            md.append(
                f"Stream: {exp['changes']:,} changes of {exp['streams']:,} entities in "
                f"{exp['transactions']:,} demo transactions (seed {exp['seed']}), "
                f"{exp['file_bytes'] / 1e6:.1f} MB of JSON lines; {len(reps)} repetition(s).\n"
            )
        # Ours.
        md.append("### Ours: durable ingest through `Store::commit`, one transaction of N changes at a time\n")
        md.append("| backend | N | changes | changes/s | commit p50 ms | commit p99 ms | entity_at_version p50 ms | p99 ms | peak RSS MiB | load before |")
        md.append("|---|---|---|---|---|---|---|---|---|---|")
        ours_summary: dict[str, Any] = {}
        for backend in ("sled", "redb"):
            for batch in (1, 100, 1000):
                rs = [res(f"n{n}-r{r}-ours-{backend}-b{batch}") for r in reps]
                rs = [x for x in rs if x]
                if not rs:
                    md.append(f"| {backend} | {batch} | failed | | | | | | | |")
                    continue
                rate, rng = spread([x["changes_per_second"] for x in rs])
                loads = ", ".join(by_name[f"n{n}-r{r}-ours-{backend}-b{batch}"]["load_before"] for r in reps)
                x = rs[0]
                rej = f" ({x['rejected_transactions']} refused)" if x["rejected_transactions"] else ""
                md.append(
                    f"| {backend} | {batch:,} | {x['changes']:,}{rej} | **{fmt_rate(rate)}**{rng} | "
                    f"{fmt_ms(statistics.median(y['commit_seconds_p50'] for y in rs))} | "
                    f"{fmt_ms(statistics.median(y['commit_seconds_p99'] for y in rs))} | "
                    f"{fmt_ms(statistics.median(y['read_seconds_p50'] for y in rs))} | "
                    f"{fmt_ms(statistics.median(y['read_seconds_p99'] for y in rs))} | "
                    f"{rss_cell(rs)} | {loads} |"
                )
                ours_summary[f"{backend}-b{batch}"] = {"changes_per_second": rate}
        md.append("")
        md.append("### Ours: rebuild and disk footprint (after the batch-of-1,000 load)\n")
        md.append("| backend | rebuild changes/s | digest equal | peak RSS MiB (rebuild) | journal raw JSON MB | store on disk MB | footprint ÷ journal JSON | load before |")
        md.append("|---|---|---|---|---|---|---|---|")
        for backend in ("sled", "redb"):
            rb = [res(f"n{n}-r{r}-ours-{backend}-rebuild") for r in reps]
            rb = [x for x in rb if x]
            ing = [res(f"n{n}-r{r}-ours-{backend}-b1000") for r in reps]
            ing = [x for x in ing if x]
            if not rb or not ing:
                md.append(f"| {backend} | failed | | | | | | |")
                continue
            rate, rng = spread([x["changes_per_second"] for x in rb])
            jj = ing[0]["journal_json_bytes"]
            disk = ing[0]["footprint"]["total_allocated_bytes"]
            loads = ", ".join(by_name[f"n{n}-r{r}-ours-{backend}-rebuild"]["load_before"] for r in reps)
            md.append(
                f"| {backend} | **{fmt_rate(rate)}**{rng} | {all(x['digest_equal'] for x in rb)} | "
                f"{max(x['peak_rss_kib'] for x in rb) / 1024:.0f} | {jj / 1e6:.1f} | {disk / 1e6:.1f} | "
                f"**{disk / jj:.1f}x** | {loads} |"
            )
            ours_summary[f"{backend}-rebuild"] = {"changes_per_second": rate, "footprint_ratio": disk / jj}
        md.append("")
        per_size_new_workloads(md, n, reps, res, by_name)

        # Peers and limits.
        md.append("### Peers and limits, same stream\n")
        md.append("| system | changes/s | batch p50 ms | batch p99 ms | read at version p50 ms | p99 ms | on disk MB | peak RSS MiB | load before |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        peer_rates: dict[str, dict[int, float]] = {}
        for suffix, label in peer_labels.items():
            rs = {r: res(f"n{n}-r{r}-{suffix}") for r in reps}
            ok = {r: x for r, x in rs.items() if x}
            if not ok:
                if any(f"n{n}-r{r}-{suffix}" in by_name for r in reps):
                    md.append(f"| {label} | **failed** (see results.json) | | | | | | | |")
                continue
            peer_rates[suffix] = {r: x["changes_per_second"] for r, x in ok.items()}
            rate, rng = spread(list(peer_rates[suffix].values()))
            first = next(iter(ok.values()))
            reads = [x.get("read_seconds_p50") for x in ok.values() if x.get("read_seconds_p50") is not None]
            reads99 = [x.get("read_seconds_p99") for x in ok.values() if x.get("read_seconds_p99") is not None]
            disk = first.get("disk_bytes")
            if disk is None and isinstance(first.get("table_bytes"), dict):
                disk = sum(first["table_bytes"].values())
            loads = ", ".join(by_name[f"n{n}-r{r}-{suffix}"]["load_before"] for r in ok)
            md.append(
                f"| {label} | **{fmt_rate(rate)}**{rng} | {fmt_ms(statistics.median(x['batch_seconds_p50'] for x in ok.values()))} | "
                f"{fmt_ms(statistics.median(x['batch_seconds_p99'] for x in ok.values()))} | "
                f"{fmt_ms(statistics.median(reads)) if reads else '–'} | {fmt_ms(statistics.median(reads99)) if reads99 else '–'} | "
                f"{(disk or 0) / 1e6:.1f} | {(first.get('peak_rss_kib') or 0) / 1024:.0f} | {loads} |"
            )
        md.append("")
        md.append(
            "PostgreSQL sizes are `pg_total_relation_size` of the tables (heap, TOAST, indexes; not "
            "WAL); peak RSS of the Python client, not the server. Raw sled and redb store three "
            "keys per change: the change's JSON line twice (journal entry and entity) and an index key.\n"
        )

        # Ratios.
        md.append("### Ours as a ratio to each peer (ours ÷ peer, changes/s; per repetition, then the median)\n")
        header = "| peer | " + " | ".join(f"ours {b} N={k:,}" for b, k in OURS_KEYS) + " |"
        md.append(header)
        md.append("|---|" + "---|" * len(OURS_KEYS))
        ratios: dict[str, dict[str, float | None]] = {}
        for suffix, label in peer_labels.items():
            if suffix not in peer_rates:
                continue
            cells = []
            ratios[suffix] = {}
            for backend, batch in OURS_KEYS:
                per_rep = []
                for r, peer_rate in peer_rates[suffix].items():
                    ours = res(f"n{n}-r{r}-ours-{backend}-b{batch}")
                    if ours and peer_rate:
                        per_rep.append(ours["changes_per_second"] / peer_rate)
                val = statistics.median(per_rep) if per_rep else None
                ratios[suffix][f"{backend}-b{batch}"] = val
                cells.append("–" if val is None else f"{val:.2f}")
            md.append(f"| {label} | " + " | ".join(cells) + " |")
        md.append("")
        read_rows: list[str] = []
        ours_read = {}
        for backend in ("sled", "redb"):
            xs = [res(f"n{n}-r{r}-ours-{backend}-b1000") for r in reps]
            xs = [x for x in xs if x]
            ours_read[backend] = statistics.median(x["read_seconds_p50"] for x in xs) if xs else None
        for suffix, label in peer_labels.items():
            xs = [res(f"n{n}-r{r}-{suffix}") for r in reps]
            xs = [x for x in xs if x and x.get("read_seconds_p50") is not None]
            if not xs:
                continue
            p50 = statistics.median(x["read_seconds_p50"] for x in xs)
            p99 = statistics.median(x["read_seconds_p99"] for x in xs)
            cells = [f"{ours_read[b] / p50:.2f}" if ours_read[b] and p50 else "–" for b in ("sled", "redb")]
            read_rows.append(f"| {label} | {fmt_ms(p50)} | {fmt_ms(p99)} | " + " | ".join(cells) + " |")
        if read_rows:
            md.append("### Read an entity at a version, same 2,000 (stream, version) points (median of repetitions)\n")
            md.append("| peer | peer p50 ms | peer p99 ms | ours sled p50 ÷ peer p50 | ours redb p50 ÷ peer p50 |")
            md.append("|---|---|---|---|---|")
            md.extend(read_rows)
            md.append("")
        fs_rate = fs["append_4kib_fdatasync"]["syncs_per_second"] if fs else None
        if fs_rate:
            md.append(
                f"The disk's {fmt_rate(fs_rate)} fdatasync/s bound a commit of N changes at "
                f"{fmt_rate(fs_rate)} × N changes/s for one sync per commit; ours syncs the journal "
                "(and the key vault when new entities have identifiable values) once per group commit.\n"
            )
        summary[str(n)] = {"ours": ours_summary, "peers_changes_per_second": peer_rates, "ratios_ours_over_peer": ratios}

    failed = [r["name"] for r in runs if "error" in r["result"]]
    if failed:
        md.append("## Failed runs\n")
        for name in failed:
            err = by_name[name]["result"]["error"].strip().splitlines()[-1:] or [""]
            md.append(f"- `{name}`: {err[0]}")
        md.append("")

    measured = [n for n in sizes if reps_of(n)]
    metrics = {n: size_metrics(n, reps_of(n), res, peer_labels) for n in measured}
    growth_tables(md, measured, metrics, [n for n in sizes if f"n{n}-skipped" in by_name])
    growth = {"sizes": measured, "metrics": {str(n): v for n, v in metrics.items()}, "plots": plots(measured, metrics)}

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"mode": a.mode, "sizes": sizes, "machine": m, "summary": summary, "growth": growth, "runs": runs},
            f,
            indent=1,
        )
    with open(os.path.join(a.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
