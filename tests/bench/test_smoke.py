"""Smoke tests of the benchmark harness's pure parts: no server, tiny data, no timing thresholds."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from bench.__main__ import render_saved
from bench.dataset import FILTER_CATEGORY, Dataset, DatasetSpec, build, load_or_build
from bench.faiss_reference import FaissReference
from bench.measure import Budget, search_cell, search_cells
from bench.metrics import Latency, pad_ids, peak_rss, recall_at_k
from bench.plan import Plan, TargetResult, make_plan, nlist_for
from bench.report import (
    derive,
    document,
    issue6_checks,
    render_checks,
    render_notes,
    render_table,
    write_json,
)

TINY = DatasetSpec(n=2_000, nq=20, dim=16, clusters=20, spread=1.0)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return build(TINY)


def _brute_force(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    d = ((queries[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_same_spec_gives_identical_arrays(tiny: Dataset) -> None:
    again = build(TINY)
    for name in ("vectors", "queries", "category", "tag_codes", "truth", "truth_filtered"):
        assert np.array_equal(getattr(tiny, name), getattr(again, name)), name


def test_another_seed_gives_other_vectors(tiny: Dataset) -> None:
    other = build(DatasetSpec(n=TINY.n, nq=TINY.nq, dim=TINY.dim, clusters=TINY.clusters, spread=1.0, seed=1))
    assert not np.array_equal(tiny.vectors, other.vectors)


def test_shapes_ranges_and_held_out_queries(tiny: Dataset) -> None:
    assert tiny.vectors.shape == (TINY.n, TINY.dim) and tiny.vectors.dtype == np.float32
    assert tiny.queries.shape == (TINY.nq, TINY.dim)
    assert tiny.category.min() >= 0 and tiny.category.max() < 10
    assert tiny.tag_codes.min() >= 0 and tiny.tag_codes.max() < 1_000
    assert tiny.tag_strings(0, 3) == [f"g{c:03d}" for c in tiny.tag_codes[:3]]
    # no query is a base row
    nearest = ((tiny.queries[:, None, :] - tiny.vectors[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    assert (nearest > 0).all()


def test_ground_truth_is_exact_and_filtered_truth_respects_the_filter(tiny: Dataset) -> None:
    want = _brute_force(tiny.vectors, tiny.queries, TINY.k)
    assert recall_at_k(tiny.truth, want, TINY.k) >= 0.99  # ties in float32 may swap equal distances
    assert (tiny.category[tiny.truth_filtered] == FILTER_CATEGORY).all()
    keep = np.flatnonzero(tiny.category == FILTER_CATEGORY)
    want_filtered = keep[_brute_force(tiny.vectors[keep], tiny.queries, TINY.k)]
    assert recall_at_k(tiny.truth_filtered, want_filtered, TINY.k) >= 0.99


def test_cache_round_trip(tmp_path: Path, tiny: Dataset) -> None:
    first, cached = load_or_build(TINY, tmp_path)
    assert not cached
    second, cached = load_or_build(TINY, tmp_path)
    assert cached
    assert np.array_equal(first.vectors, tiny.vectors) and np.array_equal(second.truth, tiny.truth)
    assert (tmp_path / ".gitignore").read_text().strip().endswith("*")


def test_recall_on_a_hand_made_case() -> None:
    truth = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    found = np.array([[1, 2, 9], [6, -1, -1]], dtype=np.int64)
    assert recall_at_k(found, truth, 3) == pytest.approx(3 / 6)
    assert recall_at_k(truth, truth, 3) == 1.0
    # a repeated id counts once; a short answer loses recall
    assert recall_at_k(np.array([[1, 1, 1]]), np.array([[1, 2, 3]]), 3) == pytest.approx(1 / 3)
    assert recall_at_k(np.array([[3]]), np.array([[1, 2, 3]]), 3) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        recall_at_k(found[:1], truth, 3)


def test_pad_ids_and_latency_summary() -> None:
    assert pad_ids([[5, 6], [], [1, 2, 3, 4]], 3).tolist() == [[5, 6, -1], [-1, -1, -1], [1, 2, 3]]
    lat = Latency.of([i / 1000 for i in range(1, 101)])
    assert lat.p50 == pytest.approx(50.5) and lat.count == 100 and lat.p99 > lat.p50


def test_peak_rss_of_this_process() -> None:
    rss = peak_rss(os.getpid())
    assert rss is not None and rss.own > 0 and rss.with_children >= rss.own


def test_search_cell_times_an_exact_searcher(tiny: Dataset) -> None:
    def search(queries: np.ndarray) -> np.ndarray:
        return _brute_force(tiny.vectors, queries, TINY.k)

    budget = Budget(budget_s=0.01, min_queries=3, repeat=2, threads=3, batch=7, warmup=1)
    cell = search_cell(search, tiny.queries, tiny.truth, TINY.k, budget)
    assert cell["recall"] >= 0.99 and cell["recall_queries"] == TINY.nq
    assert all(cell[k] > 0 for k in ("qps_1", "qps_8", "qps_batch"))


def test_search_cell_reports_the_worst_recall_of_its_runs(tiny: Dataset) -> None:
    # a searcher that turns approximate after its first batch run (as when a cache arrives): the
    # cell must report the recall of the worse path, not the first run's
    batches = [0]

    def search(queries: np.ndarray) -> np.ndarray:
        exact = _brute_force(tiny.vectors, queries, TINY.k)
        if len(queries) > 1:
            batches[0] += 1
        if batches[0] > len(tiny.queries) // 7 + 1:  # past the first batch run: hits 2..k+1
            return _brute_force(tiny.vectors, queries, TINY.k + 1)[:, 1:]
        return exact

    budget = Budget(budget_s=0.01, min_queries=3, repeat=2, threads=2, batch=7, warmup=1)
    cell = search_cell(search, tiny.queries, tiny.truth, TINY.k, budget)
    assert cell["recall"] == pytest.approx((TINY.k - 1) / TINY.k, abs=0.02)  # 0.9: one hit in ten lost
    assert cell["recall_queries"] == TINY.nq


def test_search_cells_interleave_the_repeats_of_a_sweep(tiny: Dataset) -> None:
    # run r of every configuration before run r + 1 of any: a slow minute of the host lands in one
    # run of each figure, and a cache that arrives mid-sweep is seen by the later runs
    calls: list[str] = []

    def searcher(label: str) -> Callable[[np.ndarray], np.ndarray]:
        def search(queries: np.ndarray) -> np.ndarray:
            if not calls or calls[-1] != label:
                calls.append(label)
            return _brute_force(tiny.vectors, queries, TINY.k)

        return search

    runs: list[tuple[int, int]] = []
    budget = Budget(budget_s=0.01, min_queries=3, repeat=3, threads=2, batch=7, warmup=1)
    cells = search_cells(
        [searcher("a"), searcher("b")],
        tiny.queries,
        tiny.truth,
        TINY.k,
        budget,
        lambda position, run, recall: runs.append((position, run)),
    )
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert runs == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    assert all(cell["recall"] >= 0.99 and cell["qps_1"] > 0 for cell in cells)


def test_faiss_reference_ticks_as_planned(tiny: Dataset) -> None:
    budget = Budget(budget_s=0.01, min_queries=3, repeat=1, threads=2, batch=10, warmup=1)
    plan = Plan(TINY.n, (16, 64), (4, 16), nlist_for(TINY.n), budget)
    ticks: list[str] = []
    result = FaissReference(plan, ticks.append).run(tiny)
    assert result.error is None
    assert len(ticks) == plan.steps(client=False)
    assert result.metrics["hnsw.ef64.recall"] >= result.metrics["hnsw.ef16.recall"] - 0.05
    assert result.metrics["ivf.nprobe16.recall"] > 0.5
    assert result.metrics["memory.vectors_plus_index_bytes"] > tiny.vectors.nbytes


def test_nlist_rule() -> None:
    assert (nlist_for(20_000), nlist_for(100_000), nlist_for(1_000_000)) == (141, 316, 1024)


def _results(with_faiss: bool = True) -> tuple[Sequence[TargetResult], Plan]:
    plan = make_plan(100_000, quick=True, repeat=1)
    sweep = {"recall": 0.97, "qps_1": 1_200.0, "qps_8": 1_500.0, "qps_batch": 20_000.0}
    pel = {f"hnsw.ef{e}.{k}": v for e in plan.efs for k, v in sweep.items()}
    pel["hnsw.ef16.recall"] = 0.80
    pel["hnsw.ef16.qps_1"] = 9_999.0  # fast but below the recall bar: must not count as best
    pel.update({"ingest.insert_rows_per_s": 80_000.0, "count.p50_ms": 3.0, "ingest.to_searchable_s": 10.0})
    lite = {"ingest.insert_rows_per_s": 40_000.0, "hnsw.ef64.qps_1": 30.0}
    faiss = {"ingest.to_searchable_s": 8.0, "hnsw.ef64.qps_1": 12_000.0}
    out = [TargetResult("pelagos", pel), TargetResult("lite", lite, notes=["a note"])]
    if with_faiss:
        out.append(TargetResult("faiss", faiss))
    out.append(TargetResult("lite-file", {}, error="boom", skipped=True))
    for r in out:
        derive(r.metrics, plan)
    return out, plan


def test_derive_keeps_only_points_above_the_recall_bar() -> None:
    results, _ = _results()
    assert results[0].metrics["best.hnsw.qps_1"] == 1_200.0
    assert "best.hnsw.qps_1" not in results[1].metrics  # lite has no recall figures


def test_table_shows_figures_ratios_and_verdicts() -> None:
    results, plan = _results()
    table = render_table(results, plan)
    header = table.splitlines()[0].split()
    assert header[:5] == ["metric", "pelagos", "lite", "faiss", "lite-file"]
    insert = next(line for line in table.splitlines() if line.startswith("insert rows/s"))
    assert "80,000" in insert and "40,000" in insert and "2.00x" in insert and "pass" in insert
    count = next(line for line in table.splitlines() if line.startswith("count(*) p50"))
    assert "FAIL" in count
    searchable = next(line for line in table.splitlines() if line.startswith("ingest-to-searchable"))
    assert "1.25x" in searchable and "pass" in searchable
    qps = next(line for line in table.splitlines() if line.startswith("ef=64 QPS, 1 thread"))
    assert "40.00x" in qps and "0.10x" in qps
    best = next(line for line in table.splitlines() if line.startswith("HNSW QPS, 1 thread"))
    assert "1,200" in best and "pass" in best
    assert "—" in table  # missing figures are dashes, never zeros
    checks = render_checks(results, plan)
    assert "stated at 100k" in checks and "FAIL" in checks
    notes = render_notes(results)
    assert "lite: a note" in notes and "lite-file: not measured: boom" in notes


def test_checks_without_a_faiss_figure_are_not_passed() -> None:
    results, plan = _results(with_faiss=False)
    table = render_table(results, plan)
    searchable = next(line for line in table.splitlines() if line.startswith("ingest-to-searchable"))
    assert searchable.rstrip().endswith("n/a")
    rss = next(c for c in issue6_checks(plan.n) if c.key == "rss.after_load_bytes")
    assert (
        rss.verdict({"rss.after_load_bytes": 1.0}, {"memory.vectors_plus_index_bytes": 1e9}, 100_000) == "n/a"
    )
    assert (
        rss.verdict({"rss.after_load_bytes": 1.0}, {"memory.vectors_plus_index_bytes": 1e9}, 10**6) == "pass"
    )
    assert not math.isnan(results[0].metrics["best.hnsw.qps_batch"])


def test_a_saved_run_renders_the_same_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, plan = _results()
    machine = {"nproc": 2, "cpu_model": "test cpu", "load_average": [0.0, 0.0, 0.0]}
    path = tmp_path / "run.json"
    write_json(document(results, plan, machine, {}, "2026-01-01T00:00:00", ["x"]), path)
    render_saved(path)
    printed = capsys.readouterr().out
    assert render_table(results, plan) in printed and render_checks(results, plan) in printed


def test_ceiling_figures_are_the_sweep_median_and_carry_no_recall() -> None:
    plan = make_plan(100_000, quick=True, repeat=1)
    rates = dict(zip(plan.efs, (1_000.0, 3_000.0, 2_000.0), strict=True))
    metrics = {f"hnsw.ef{e}.qps_1": r for e, r in rates.items()}
    derive(metrics, plan, ceiling=True)
    assert metrics["best.hnsw.qps_1"] == 2_000.0  # the median: ef changes nothing on a canned server
    assert "best.hnsw.qps_8" not in metrics and "best.ivf.qps_1" not in metrics  # unmeasured stays absent


def test_checks_show_the_client_ceiling_and_when_it_is_short_of_the_target() -> None:
    results, plan = _results()
    canned = {"ingest.insert_rows_per_s": 55_000.0, "best.hnsw.qps_1": 2_100.0}
    with_ceiling = [*results, TargetResult("canned", canned)]
    checks = render_checks(with_ceiling, plan).splitlines()
    insert = next(line for line in checks if "insert rows/s" in line)
    assert "client ceiling 55,000" in insert and "falls short" in insert
    one = next(line for line in checks if "QPS 1 thread" in line and "HNSW" in line)
    assert "client ceiling 2,100" in one and "falls short" not in one
    count = next(line for line in checks if "count(*)" in line)
    assert "ceiling" not in count  # latency checks have no ceiling figure
    assert "client ceiling" not in render_checks(results, plan)  # no canned run, no ceiling shown
    doc = document(with_ceiling, plan, {}, {}, "t", [])
    by_key = {c["key"]: c for c in doc["issue6"]}
    assert by_key["ingest.insert_rows_per_s"]["client_ceiling"] == 55_000.0
    assert by_key["count.p50_ms"]["client_ceiling"] is None


def test_serial_checks_show_the_rate_of_a_server_whose_only_cost_is_faiss() -> None:
    results, plan = _results()
    faiss = next(r for r in results if r.name == "faiss")
    faiss.metrics["best.hnsw.qps_1"] = 6_000.0
    faiss.metrics["best.hnsw.qps_8"] = 9_000.0
    canned = TargetResult("canned", {"best.hnsw.qps_1": 2_000.0, "best.hnsw.qps_8": 2_500.0})
    checks = render_checks([*results, canned], plan).splitlines()
    one = next(line for line in checks if "QPS 1 thread" in line and "HNSW" in line)
    assert "client ceiling 2,000; with faiss's time 1,500" in one  # 1 / (1/2,000 + 1/6,000)
    eight = next(line for line in checks if "QPS 8 threads" in line)
    assert "client ceiling 2,500" in eight and "faiss's time" not in eight  # 8 clients overlap the server
    by_key = {c["key"]: c for c in document([*results, canned], plan, {}, {}, "t", [])["issue6"]}
    assert by_key["best.hnsw.qps_1"]["faiss_time_bound"] == 1_500.0
    assert by_key["best.hnsw.qps_8"]["faiss_time_bound"] is None
