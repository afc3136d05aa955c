"""Benchmarks of Pelagos against milvus-lite and raw faiss (issue 6): `python -m bench`.

Modules: dataset (seeded Gaussian mixture + exact ground truth, cached),
plan (sweeps, budgets, metric keys), measure (timing loops), metrics
(recall, latency, peak RSS), protocol (the MilvusClient protocol), faiss_reference
(raw faiss), targets (server processes), report (table, checks, JSON),
machine (what it ran on). The stand-alone scripts beside them
(log_publish.py, segment_io.py, ...) are separate micro-benchmarks.
"""
