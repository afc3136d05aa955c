"""The results table, the issue-6 checks on Pelagos, and the JSON document.

Derived figures (`best.*`): for each sweep, the highest rate among the
sweep points whose recall@10 >= 0.95; absent when no point reaches it. For
the `canned` target (a server that does no work, so no recall) they are the
median rate over the sweep: the client's ceiling, which ef does not change.
The checks list shows that ceiling beside Pelagos's figure, so a run tells
by itself which figures the client, not the server, holds back.

Issue-6 targets are stated at 100k and at 1M rows: runs with N >= 1,000,000
are checked against the 1M figures, smaller runs against the 100k figures
(so a --quick run at 20k is only indicative). A check whose figure is
missing (Pelagos or faiss not measured) reads "n/a", never "pass".

Invariants: rendering is pure (strings from dicts), so it is unit-tested
without any server; ratios are Pelagos / other, on the raw figures.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.plan import Plan, TargetResult

RECALL_BAR = 0.95
MIB = 1024 * 1024
RATES = ("qps_1", "qps_8", "qps_batch")
CEILING = "canned"


def derive(metrics: dict[str, float], plan: Plan, *, ceiling: bool = False) -> None:
    """Add best.<family>.<rate> to `metrics` in place: the rate at recall >= 0.95, or the ceiling's."""
    sweeps = {"hnsw": ("ef", plan.efs), "filtered": ("ef", plan.efs), "ivf": ("nprobe", plan.nprobes)}
    for family, (knob, values) in sweeps.items():
        for rate in RATES:
            if ceiling:
                points = [metrics[k] for v in values if (k := f"{family}.{knob}{v}.{rate}") in metrics]
                if points:
                    metrics[f"best.{family}.{rate}"] = statistics.median(points)
                continue
            good = [
                metrics[f"{family}.{knob}{v}.{rate}"]
                for v in values
                if metrics.get(f"{family}.{knob}{v}.recall", 0.0) >= RECALL_BAR
                and f"{family}.{knob}{v}.{rate}" in metrics
            ]
            if good:
                metrics[f"best.{family}.{rate}"] = max(good)


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    unit: str  # "recall", "rate", "s", "ms", "mib"


@dataclass(frozen=True)
class Check:
    """One figure of issue 6 that Pelagos must reach."""

    label: str
    key: str
    op: str  # ">=" or "<="
    threshold: float
    relative_to: str | None = None  # faiss metric the threshold multiplies
    min_n: int = 0  # checked only on runs at least this large

    def limit(self, faiss: Mapping[str, float]) -> float | None:
        if self.relative_to is None:
            return self.threshold
        base = faiss.get(self.relative_to)
        return None if base is None else self.threshold * base

    def verdict(self, pelagos: Mapping[str, float], faiss: Mapping[str, float], n: int) -> str:
        value, limit = pelagos.get(self.key), self.limit(faiss)
        if n < self.min_n:
            return "n/a"
        if value is None or limit is None or math.isnan(value):
            return "n/a"
        ok = value >= limit if self.op == ">=" else value <= limit
        return "pass" if ok else "FAIL"

    def describe(self) -> str:
        text = (
            f"{self.op} {_plain(self.threshold)}"
            if self.relative_to is None
            else f"{self.op} {self.threshold:g}x faiss"
        )
        return text if self.min_n == 0 else f"{text} at 1M"


def _plain(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:g}"


def issue6_checks(n: int) -> list[Check]:
    big = n >= 1_000_000
    checks = [
        Check("insert rows/s", "ingest.insert_rows_per_s", ">=", 70_000),
        Check("HNSW QPS 1 thread @recall>=0.95", "best.hnsw.qps_1", ">=", 1_000 if big else 1_100),
        Check("HNSW QPS 8 threads @recall>=0.95", "best.hnsw.qps_8", ">=", 2_000),
        Check("filtered QPS 1 thread @recall>=0.95", "best.filtered.qps_1", ">=", 800),
        Check("query by filter p50 ms", "query_filter.p50_ms", "<=", 30.0 if big else 5.0),
        Check("count(*) p50 ms", "count.p50_ms", "<=", 2.0),
        Check("ingest-to-searchable", "ingest.to_searchable_s", "<=", 1.3, "ingest.to_searchable_s"),
        Check(
            "peak RSS after HNSW load",
            "rss.after_load_bytes",
            "<=",
            1.5,
            "memory.vectors_plus_index_bytes",
            min_n=1_000_000,
        ),
    ]
    if not big:
        checks.insert(3, Check("HNSW batch-100 q/s @recall>=0.95", "best.hnsw.qps_batch", ">=", 15_000))
    return checks


def rows_for(plan: Plan) -> list[tuple[str, list[Row]]]:
    """Sections of the table, in print order."""

    def sweep(family: str, knob: str, values: Sequence[int]) -> list[Row]:
        out: list[Row] = []
        for v in values:
            p = f"{family}.{knob}{v}"
            out += [
                Row(f"{knob}={v} recall@10", f"{p}.recall", "recall"),
                Row(f"{knob}={v} QPS, 1 thread", f"{p}.qps_1", "rate"),
                Row(f"{knob}={v} QPS, 8 threads", f"{p}.qps_8", "rate"),
                Row(f"{knob}={v} q/s, batches of 100", f"{p}.qps_batch", "rate"),
            ]
        return out

    rate_names = {"qps_1": "QPS, 1 thread", "qps_8": "QPS, 8 threads", "qps_batch": "q/s, batches of 100"}
    family_names = {"hnsw": "HNSW", "filtered": "filtered", "ivf": "IVF_FLAT"}
    best = [
        Row(f"{family_names[fam]} {rate_names[r]}", f"best.{fam}.{r}", "rate")
        for fam in ("hnsw", "filtered", "ivf")
        for r in RATES
    ]
    return [
        (
            "ingest",
            [
                Row("insert rows/s (batches of 10,000)", "ingest.insert_rows_per_s", "rate"),
                Row("insert, s", "ingest.insert_s", "s"),
                Row("flush, s", "ingest.flush_s", "s"),
                Row("HNSW build (index ready), s", "ingest.index_s", "s"),
                Row("load, s", "ingest.load_s", "s"),
                Row("ingest-to-searchable, s", "ingest.to_searchable_s", "s"),
            ],
        ),
        (f"HNSW M={plan.hnsw_m} efConstruction={plan.ef_construction}", sweep("hnsw", "ef", plan.efs)),
        ("filtered search, category == 3 (HNSW)", sweep("filtered", "ef", plan.efs)),
        (
            f"IVF_FLAT nlist={plan.nlist}",
            [Row("IVF build + load, s", "ivf.build_s", "s"), *sweep("ivf", "nprobe", plan.nprobes)],
        ),
        ("best rate at recall@10 >= 0.95", best),
        (
            "scalar reads",
            [
                Row('query tag == "gNNN" p50, ms', "query_filter.p50_ms", "ms"),
                Row('query tag == "gNNN" p99, ms', "query_filter.p99_ms", "ms"),
                Row("get 10 ids p50, ms", "get.p50_ms", "ms"),
                Row("get 10 ids p99, ms", "get.p99_ms", "ms"),
                Row("count(*) p50, ms", "count.p50_ms", "ms"),
                Row("count(*) p99, ms", "count.p99_ms", "ms"),
            ],
        ),
        (
            "memory",
            [
                Row("peak RSS after HNSW load, MiB", "rss.after_load_bytes", "mib"),
                Row("  same, with child processes, MiB", "rss.after_load_with_children_bytes", "mib"),
                Row("peak RSS at the end, MiB", "rss.end_bytes", "mib"),
                Row("raw vectors + faiss HNSW index, MiB", "memory.vectors_plus_index_bytes", "mib"),
            ],
        ),
    ]


def fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit == "recall":
        return f"{value:.3f}"
    if unit == "rate":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if unit == "mib":
        return f"{value / MIB:,.0f}"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return "—"
    return f"{a / b:.2f}x"


def _lite_name(names: Sequence[str]) -> str | None:
    return next((n for n in ("lite", "lite-file") if n in names), None)


def render_table(results: Sequence[TargetResult], plan: Plan) -> str:
    """The table: one column per target, Pelagos ratios, issue-6 targets with pass/fail."""
    names = [r.name for r in results]
    by_name = {r.name: r.metrics for r in results}
    pel = by_name.get("pelagos", {})
    lite_name = _lite_name(names)
    lite = by_name.get(lite_name, {}) if lite_name else {}
    faiss = by_name.get("faiss", {})
    checks = {c.key: c for c in issue6_checks(plan.n)}

    header = ["metric", *names, f"P/{lite_name or 'lite'}", "P/faiss", "issue 6", "Pelagos"]
    lines: list[list[str]] = []
    for title, rows in rows_for(plan):
        lines.append([f"[{title}]"])
        for row in rows:
            cells = [row.label, *(fmt(by_name[n].get(row.key), row.unit) for n in names)]
            cells.append(ratio(pel.get(row.key), lite.get(row.key)) if row.unit != "recall" else "")
            cells.append(ratio(pel.get(row.key), faiss.get(row.key)) if row.unit != "recall" else "")
            check = checks.get(row.key)
            cells += [check.describe(), check.verdict(pel, faiss, plan.n)] if check else ["", ""]
            lines.append(cells)

    widths = [max(len(header[i]), *(len(c[i]) for c in lines if len(c) > 1)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(widths[i + 1]) for i, c in enumerate(cells[1:])]
        return "  ".join([first, *rest]).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    for cells in lines:
        out.append(cells[0] if len(cells) == 1 else line(cells))
    return "\n".join(out)


#: checks whose client waits for each answer before its next call: a server whose only cost is
#: faiss's time answers them at 1 / (1/client ceiling + 1/raw faiss)
SERIAL_KEYS = frozenset({"best.hnsw.qps_1", "best.hnsw.qps_batch"})


def serial_bound(key: str, ceiling: Mapping[str, float], faiss: Mapping[str, float]) -> float | None:
    """The rate of a server adding nothing to faiss, for a serial check with both figures measured."""
    c, f = ceiling.get(key), faiss.get(key)
    if key not in SERIAL_KEYS or not c or not f:
        return None
    return 1.0 / (1.0 / c + 1.0 / f)


def _ceiling_note(check: Check, ceiling: Mapping[str, float], faiss: Mapping[str, float]) -> str:
    """The canned server's figure for a rate check, whether it is itself short of the target, and for
    serial checks the rate of a server whose only cost is faiss's time."""
    value = ceiling.get(check.key)
    if value is None or check.op != ">=" or check.relative_to is not None:
        return ""
    short = "  (the client alone falls short of the target)" if value < check.threshold else ""
    bound = serial_bound(check.key, ceiling, faiss)
    with_faiss = f"; with faiss's time {bound:,.0f}" if bound is not None else ""
    return f"   client ceiling {value:,.0f}{with_faiss}{short}"


def render_checks(results: Sequence[TargetResult], plan: Plan) -> str:
    """The issue-6 targets alone, with Pelagos's figure, its verdict and the client's ceiling."""
    by_name = {r.name: r.metrics for r in results}
    pel, faiss = by_name.get("pelagos", {}), by_name.get("faiss", {})
    ceiling = by_name.get(CEILING, {})
    scale = "1M" if plan.n >= 1_000_000 else "100k"
    out = [f"issue 6 targets (stated at {scale}; this run N={plan.n:,}):"]
    for c in issue6_checks(plan.n):
        value = pel.get(c.key)
        shown = (
            "—"
            if value is None
            else (f"{value / MIB:,.0f} MiB" if c.key.startswith("rss") else f"{value:,.2f}")
        )
        out.append(
            f"  {c.verdict(pel, faiss, plan.n):>4}  {c.label:<38} {c.describe():>16}   Pelagos {shown}"
            + _ceiling_note(c, ceiling, faiss)
        )
    if ceiling:
        out.append(
            f"  (client ceiling: the same calls against `{CEILING}`, a server that answers with prebuilt"
            " responses and does no work)"
        )
    return "\n".join(out)


def render_notes(results: Sequence[TargetResult]) -> str:
    out: list[str] = []
    for r in results:
        if r.error:
            out.append(f"{r.name}: {'not measured' if r.skipped else 'stopped'}: {r.error}")
        out.extend(f"{r.name}: {note}" for note in r.notes)
    return "\n".join(out)


def document(
    results: Sequence[TargetResult],
    plan: Plan,
    machine: dict[str, Any],
    dataset: dict[str, Any],
    started: str,
    argv: Sequence[str],
) -> dict[str, Any]:
    by_name = {r.name: r.metrics for r in results}
    pel, faiss = by_name.get("pelagos", {}), by_name.get("faiss", {})
    ceiling = by_name.get(CEILING, {})
    return {
        "started": started,
        "argv": list(argv),
        "machine": machine,
        "dataset": dataset,
        "plan": asdict(plan),
        "targets": {r.name: asdict(r) for r in results},
        "issue6": [
            {
                **asdict(c),
                "value": pel.get(c.key),
                "limit": c.limit(faiss),
                "verdict": c.verdict(pel, faiss, plan.n),
                "client_ceiling": ceiling.get(c.key),
                "faiss_time_bound": serial_bound(c.key, ceiling, faiss),
            }
            for c in issue6_checks(plan.n)
        ],
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def clean(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    path.write_text(json.dumps(clean(doc), indent=2) + "\n")
