"""When the data node seals a growing segment: the defaults every configuration layer starts from.

The configuration file (runtime/config.py), the in-process node settings
(runtime/assembly.py) and the data node's own settings (channel_writer.py)
all take their defaults from here, so they cannot drift apart.
"""

from __future__ import annotations

#: seal a growing segment at this size (Milvus 2.4+ seals at 1 GiB too)
SEGMENT_MAX_BYTES = 1 << 30
#: seal a growing segment that received nothing for this long
SEAL_IDLE_SECONDS = 600.0
#: write a sealed segment in locality order (datanode/locality.py) once its vectors reach this size.
#: Smaller ones sit in a server's last-level cache: at 100k x 128 (51 MB) the order changed HNSW
#: search time by less than this machine's noise; at 1M x 128 (512 MB) faiss needed a sixth less
#: time per query and the server answered 12% more searches/s from 8 clients
LOCALITY_MIN_BYTES = 64 << 20
