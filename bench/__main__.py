"""`python -m bench`: the issue-6 benchmark, Pelagos vs milvus-lite vs raw faiss, side by side.

    python -m bench [--n 100000] [--targets pelagos,canned,lite,faiss] [--quick] [--repeat 3]
                    [--budget SECONDS] [--out FILE] [--start-timeout 60]

Targets: pelagos (standalone, child process), lite (milvus-lite's server,
child process), lite-file (milvus-lite through a local .db URI, in this
process), faiss (raw faiss in this process), canned (a server that answers
with prebuilt responses: the client's ceiling). See bench/README.md.

Invariants:
- the data set and its ground truth come from bench/.cache when present
  (keyed by every parameter), else are built and cached;
- one target failing (a server that will not start, a call that raises)
  never stops the others: its column shows what it measured and the notes
  say why it stopped;
- the JSON (bench/results/<UTC timestamp>.json unless --out) is written
  even when some target failed. Exit code 0 when every target ran to the
  end, 1 when one stopped early or could not start, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dataset import Dataset, DatasetSpec, load_or_build
from bench.faiss_reference import FaissReference
from bench.machine import load_average, machine_info
from bench.measure import Budget
from bench.plan import Plan, TargetResult, Tick, make_plan
from bench.protocol import QUERY_TAG_CODES, ClientProtocol
from bench.report import (
    CEILING,
    derive,
    document,
    render_checks,
    render_notes,
    render_table,
    write_json,
)
from bench.targets import (
    canned_server,
    milvus_lite_file,
    milvus_lite_server,
    pelagos_standalone,
    scratch_dir,
)
from pelagos.errors import ServerProcessError

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
TARGETS = ("pelagos", "lite", "lite-file", "faiss", CEILING)
QUICK_N = 20_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None, help="rows (default 100,000; 20,000 with --quick)")
    p.add_argument("--nq", type=int, default=1_000, help="held-out queries (default 1,000)")
    p.add_argument(
        "--targets", default="pelagos,canned,lite,faiss", help=f"comma list of {', '.join(TARGETS)}"
    )
    p.add_argument("--quick", action="store_true", help="N=20,000, a short sweep, 1 s per timed loop")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported")
    p.add_argument("--budget", type=float, default=None, help="seconds per timed loop (default 5; 1 quick)")
    p.add_argument("--seed", type=int, default=DatasetSpec.seed)
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds for a server to accept")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results/<time>.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--render", type=Path, default=None, help="print the tables of a saved JSON run, run nothing"
    )
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown or not args.targets:
        p.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    if args.n is None:
        args.n = QUICK_N if args.quick else 100_000
    if args.n < 1_000 or args.nq < 10 or args.repeat < 1:
        p.error("--n must be >= 1000, --nq >= 10 and --repeat >= 1")
    return args


def _progress(total: int, enabled: bool) -> tuple[Tick, Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", disable=not enabled, dynamic_ncols=True, file=sys.stderr)

    def tick(desc: str) -> None:
        bar.set_description_str(desc[:48], refresh=False)
        bar.update(1)

    return tick, bar


def run_target(name: str, data: Dataset, plan: Plan, tick: Tick, start_timeout: float) -> TargetResult:
    if name == "faiss":
        return FaissReference(plan, tick).run(data)
    if name == "lite-file":
        with milvus_lite_file(CACHE) as endpoint:
            return ClientProtocol(name, endpoint.uri, None, plan, tick).run(data)
    starters = {"pelagos": pelagos_standalone, "lite": milvus_lite_server, CEILING: canned_server}
    ceiling = name == CEILING
    with scratch_dir() as workdir:
        try:
            with starters[name](workdir, start_timeout) as endpoint:
                protocol = ClientProtocol(name, endpoint.uri, endpoint.pid, plan, tick, ceiling=ceiling)
                return protocol.run(data)
        except ServerProcessError as exc:
            what = "does not serve the Milvus protocol (yet?)" if name == "pelagos" else "did not start"
            return TargetResult(name, error=f"{name} {what}: {exc}"[:1200], skipped=True)


def render_saved(path: Path) -> None:
    """Print the table, checks and notes of a JSON document written by an earlier run."""
    doc = json.loads(path.read_text())
    plan_fields = dict(doc["plan"])
    budget = Budget(**plan_fields.pop("budget"))
    for name in ("efs", "nprobes"):
        plan_fields[name] = tuple(plan_fields[name])
    plan = Plan(budget=budget, **plan_fields)
    results = [TargetResult(**t) for t in doc["targets"].values()]
    m = doc["machine"]
    print(f"{doc['started']}  N={plan.n:,}  {m['nproc']} CPUs  {m['cpu_model']}  load {m['load_average']}")
    print(render_table(results, plan))
    print()
    print(render_checks(results, plan))
    notes = render_notes(results)
    if notes:
        print()
        print(notes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        render_saved(args.render)
        return 0
    started = datetime.now(UTC)
    machine = machine_info()
    spec = DatasetSpec(n=args.n, nq=args.nq, seed=args.seed)
    plan = make_plan(args.n, args.quick, args.repeat, args.budget)

    t = time.perf_counter()
    print(f"data set {spec.key()} ...", file=sys.stderr, flush=True)
    data, cached = load_or_build(spec, CACHE)
    build_s = time.perf_counter() - t
    print(f"data set {'loaded from cache' if cached else 'built'} in {build_s:.1f}s", file=sys.stderr)

    steps = {name: plan.steps(client=name != "faiss", ceiling=name == CEILING) for name in args.targets}
    tick, bar = _progress(sum(steps.values()), not args.no_progress)
    results: list[TargetResult] = []
    done = 0
    try:
        for name in args.targets:
            result = run_target(name, data, plan, tick, args.start_timeout)
            derive(result.metrics, plan, ceiling=name == CEILING)
            results.append(result)
            done += steps[name]
            bar.n = done  # a target that stopped early skips its remaining steps
            bar.refresh()
    finally:
        bar.close()

    print()
    print(
        f"N={spec.n:,} dim={spec.dim} queries={spec.nq:,} k={spec.k} repeat={plan.budget.repeat} "
        f"budget={plan.budget.budget_s:g}s/loop  {machine['nproc']} CPUs  {machine['cpu_model']}  "
        f"load average {machine['load_average']} at start, {load_average()} now"
    )
    print(render_table(results, plan))
    print()
    print(render_checks(results, plan))
    notes = render_notes(results)
    if notes:
        print()
        print(notes)

    dataset = {
        **{k: getattr(spec, k) for k in spec.__dataclass_fields__},
        "key": spec.key(),
        "cached": cached,
        "build_or_load_s": build_s,
        "filtered_rows": data.filtered_count(),
        "tag_rows": {f"g{c:03d}": data.tag_count(c) for c in QUERY_TAG_CODES},
    }
    machine["load_average_end"] = load_average()  # other work on the machine skews every figure
    doc = document(results, plan, machine, dataset, started.isoformat(), sys.argv if argv is None else argv)
    out = args.out or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    write_json(doc, out)
    print(f"\nJSON written to {out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
