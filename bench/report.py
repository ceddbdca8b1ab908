#!/usr/bin/env python3
"""Turns the raw runs of scripts/bench (target/bench/raw/*.json, one per measurement, each
with the load average before and after) into target/bench/results.json (everything, plus
the machine) and target/bench/summary.md (tables, and each of ours as a ratio to each
peer, computed repetition by repetition from runs made back to back, then the median)."""

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
    md.append(f"# Peers and limits ({a.mode})\n")
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
        md.append("### Read an entity at a version, same 2,000 (stream, version) points (median of repetitions)\n")
        md.append("| peer | peer p50 ms | peer p99 ms | ours sled p50 ÷ peer p50 | ours redb p50 ÷ peer p50 |")
        md.append("|---|---|---|---|---|")
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
            md.append(f"| {label} | {fmt_ms(p50)} | {fmt_ms(p99)} | " + " | ".join(cells) + " |")
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

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"mode": a.mode, "sizes": sizes, "machine": m, "summary": summary, "runs": runs},
            f,
            indent=1,
        )
    with open(os.path.join(a.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
