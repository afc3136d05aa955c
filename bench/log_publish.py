"""Log broker throughput: JetStreamLogBroker publish and subscribe on a local nats-server.

Starts a nats-server (JetStream, file storage, default max_payload 1 MiB) in
a temp dir through the launcher standalone uses, then for each scenario
publishes into a fresh channel and reads everything back through a
subscription:

- small:   200,000 payloads of 1 KiB, in publish batches of 1,000;
- insert:  300 payloads of ~600 KB (one 10,000-row insert request each),
           in publish batches of 10;
- chunked: 40 payloads of 4 MiB (split into 5 broker messages each), in
           publish batches of 4.

Each figure is wall time for the whole scenario (publish calls return
only after every acknowledgement). MB are 10^6 bytes of payload.

Run: `.venv/bin/python bench/log_publish.py [--small 200000] [--inflight 256]`

On the 2-core dev machine (nats-server 2.15.1, nats-py 2.16, max_inflight 256):

    small   200000 x    1024 B  batch 1000 | publish  40305 msg/s  41.3 MB/s | subscribe 102078 msg/s 104.5 MB/s
    insert     300 x  600000 B  batch   10 | publish    982 msg/s 589.5 MB/s | subscribe   1111 msg/s 666.6 MB/s
    chunked     40 x 4194304 B  batch    4 | publish    129 msg/s 540.4 MB/s | subscribe    136 msg/s 569.1 MB/s

Small payloads are bound by the Python client's per-message cost (one
future and one ack per broker message; max_inflight 1024 or more gains
~10%); large ones by copying bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pelagos.runtime.servers.nats import NatsServer
from pelagos.storage.log.jetstream import JetStreamLogBroker


@dataclass(frozen=True)
class Scenario:
    name: str
    count: int
    size: int
    batch: int


async def run_scenario(broker: JetStreamLogBroker, sc: Scenario) -> None:
    channel = f"bench-{sc.name}"
    await broker.create_channel(channel)
    payload = os.urandom(sc.size)
    batch = [payload] * sc.batch
    total_bytes = sc.count * sc.size

    started = time.perf_counter()
    published = 0
    while published < sc.count:
        n = min(sc.batch, sc.count - published)
        await broker.publish(channel, batch[:n])
        published += n
    pub_s = time.perf_counter() - started

    sub = await broker.subscribe(channel)
    started = time.perf_counter()
    read = 0
    read_bytes = 0
    while read < sc.count:
        got = await sub.next_batch(1000, timeout=5.0)
        if not got:
            raise RuntimeError(f"{sc.name}: read stalled after {read} of {sc.count} payloads")
        read += len(got)
        read_bytes += sum(len(m.payload) for m in got)
    sub_s = time.perf_counter() - started
    await sub.close()
    assert read_bytes == total_bytes
    await broker.delete_channel(channel)

    mb = total_bytes / 1e6
    print(
        f"{sc.name:8s} {sc.count:>8d} x {sc.size:>8d} B  batch {sc.batch:>5d} | "
        f"publish {sc.count / pub_s:>9.0f} msg/s {mb / pub_s:>7.1f} MB/s ({pub_s:6.2f} s) | "
        f"subscribe {sc.count / sub_s:>9.0f} msg/s {mb / sub_s:>7.1f} MB/s ({sub_s:6.2f} s)"
    )


async def main_async(args: argparse.Namespace, url: str) -> None:
    broker = await JetStreamLogBroker.connect(url, max_inflight=args.inflight)
    try:
        print(f"nats-server at {url}, max_payload {broker.max_payload} B, max_inflight {args.inflight}")
        for sc in [
            Scenario("small", args.small, 1024, 1000),
            Scenario("insert", args.inserts, 600_000, 10),
            Scenario("chunked", args.chunked, 4 * 1024 * 1024, 4),
        ]:
            await run_scenario(broker, sc)
    finally:
        await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=200_000)
    parser.add_argument("--inserts", type=int, default=300)
    parser.add_argument("--chunked", type=int, default=40)
    parser.add_argument("--inflight", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pelagos-bench-nats-") as tmp:
        server = NatsServer(Path(tmp))
        server.start()
        try:
            asyncio.run(main_async(args, server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
