"""Shared fixtures: real servers, started once per test session.

Each fixture module under tests/fixtures starts one real server (nats-server,
etcd, `weed mini`) on free loopback ports in a temp dir, through the same
launchers that `pelagos standalone` uses.
"""

pytest_plugins = [
    "tests.fixtures.nats",
    "tests.fixtures.etcd",
    "tests.fixtures.weed",
    "tests.fixtures.engine",
    "tests.fixtures.standalone",
]
