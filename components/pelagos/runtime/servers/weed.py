"""SeaweedFS `weed mini` as a child process: an S3 endpoint on loopback.

The local cluster and the test fixtures use it as the S3 object store; it
runs master, volume server, filer, S3 gateway and an admin server with its
maintenance worker in one process.

Invariants:
- every port `weed mini` opens is chosen by us, once per `WeedServer`
  object (so a restart of the same object serves the same endpoint), and
  bound and advertised on `host` only (127.0.0.1 by default); WebDAV, the
  admin UI, the Iceberg and Lance catalogs, HTTPS, metrics and the debug
  server are off;
- the admin server still runs (its worker does maintenance); the worker
  dials the admin gRPC port as admin port + 10000, so the two are chosen as
  such a pair;
- telemetry is off (`-master.telemetry=false`);
- S3 accepts one key pair, `access_key`/`secret_key`, with every action,
  from an identities file `data_dir/s3.json` (mode 0600) rewritten at each
  start; the same pair is put in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  (which `weed mini` also reads) so an inherited pair cannot add another;
- data lives in `data_dir/data`, warnings and errors in `data_dir/weed.log`,
  weed's detailed logs in `data_dir/logs` (a few files of at most 64 MB);
  starting again on the same `data_dir` keeps every object;
- weed makes a unix socket per gRPC server at the fixed path
  /tmp/seaweedfs-<kind>-grpc-<port>.sock and leaves it behind when killed;
  stop() and kill() remove those of our ports (the filer and S3 sockets
  that can be placed go to `data_dir`);
- it counts as ready when the S3 port accepts connections, the master
  lists the volume server with at least as many volumes as there were
  `.dat` files on disk at start (so objects written before a restart read
  back at once), and a signed ListBuckets with our key pair succeeds;
- `stop()` / `kill()` signal the whole process group (ManagedProcess), so no
  weed process is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import urllib.request
from pathlib import Path

import urllib3
from minio import Minio

from pelagos.runtime.servers.base import ManagedProcess, ensure_port_free, find_binary, port_is_open

# weed computes a gRPC port as the HTTP port plus this offset where it is not
# told one (the mini maintenance worker does so for the admin server).
_GRPC_PORT_OFFSET = 10000
# Unix socket paths longer than this do not fit in sockaddr_un (108 bytes).
_MAX_SOCKET_PATH = 107
# Where weed puts the unix sockets of its gRPC servers, whatever it is told.
_GRPC_SOCKET = "/tmp/seaweedfs-{kind}-grpc-{port}.sock"
_DEFAULT_LOCAL_SOCKET = "/tmp/seaweedfs-{kind}-{port}.sock"


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _pick_ports(host: str, count: int, taken: set[int]) -> list[int]:
    """`count` distinct free ports on `host`, none in `taken` (which grows)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def _pick_offset_pair(host: str, taken: set[int]) -> int:
    """A free port p with p + 10000 free too (both added to `taken`)."""
    while True:
        (port,) = _pick_ports(host, 1, taken)
        grpc = port + _GRPC_PORT_OFFSET
        if grpc <= 65535 and grpc not in taken and _port_is_free(host, grpc):
            taken.add(grpc)
            return port
        taken.discard(port)


class WeedServer(ManagedProcess):
    """One `weed mini` process serving S3 on `host`."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        *,
        s3_port: int | None = None,
        access_key: str = "pelagos",
        secret_key: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self._access_key = access_key
        self._secret_key = secret_key if secret_key is not None else secrets.token_urlsafe(24)
        taken: set[int] = set()
        if s3_port is not None:
            taken.add(s3_port)
        admin_port = _pick_offset_pair(host, taken)
        (
            master_port,
            master_grpc,
            volume_port,
            volume_grpc,
            filer_port,
            filer_grpc,
            s3_grpc,
            webdav_port,
        ) = _pick_ports(host, 8, taken)
        self._s3_port = s3_port if s3_port is not None else _pick_ports(host, 1, taken)[0]
        self._volumes_on_disk = 0
        self._ports: dict[str, int] = {
            "master.port": master_port,
            "master.port.grpc": master_grpc,
            "volume.port": volume_port,
            "volume.port.grpc": volume_grpc,
            "filer.port": filer_port,
            "filer.port.grpc": filer_grpc,
            "s3.port": self._s3_port,
            "s3.port.grpc": s3_grpc,
            "admin.port": admin_port,
            "admin.port.grpc": admin_port + _GRPC_PORT_OFFSET,
            # WebDAV is off, but weed still probes its port: give it a free one
            "webdav.port": webdav_port,
        }
        argv = [
            find_binary("weed"),
            # glog: warnings and errors go to stderr (weed.log), everything
            # else to a few bounded files in data_dir/logs
            f"-logdir={self._logs_dir}",
            "-log_max_size_mb=64",
            "-log_max_files=3",
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={host}",
            f"-ip.bind={host}",
            *(f"-{flag}={port}" for flag, port in self._ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-s3.config={self._s3_config_path}",
        ]
        self._socket_files = [
            Path(_GRPC_SOCKET.format(kind=flag.split(".")[0], port=port))
            for flag, port in self._ports.items()
            if flag.endswith(".grpc")
        ]
        for kind in ("filer", "s3"):
            sock = self.data_dir / f"{kind}.sock"
            if len(str(sock)) > _MAX_SOCKET_PATH:
                sock = Path(_DEFAULT_LOCAL_SOCKET.format(kind=kind, port=self._ports[f"{kind}.port"]))
            argv.append(f"-{kind}.localSocket={sock}")
            self._socket_files.append(sock)
        env = {"AWS_ACCESS_KEY_ID": self._access_key, "AWS_SECRET_ACCESS_KEY": self._secret_key}
        super().__init__(
            "weed",
            argv,
            log_path=self.data_dir / "weed.log",
            ready=self._ready_probe,
            env=env,
            cwd=self.data_dir,
        )

    @property
    def s3_port(self) -> int:
        return self._s3_port

    @property
    def s3_endpoint(self) -> str:
        """The S3 endpoint as "host:port", what S3ObjectStore takes."""
        return f"{self.host}:{self._s3_port}"

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    @property
    def ports(self) -> dict[str, int]:
        """Every port weed listens on (or probes), by its flag name."""
        return dict(self._ports)

    @property
    def socket_files(self) -> list[Path]:
        """The unix sockets weed makes (removed by stop() and kill())."""
        return list(self._socket_files)

    @property
    def _s3_config_path(self) -> Path:
        return self.data_dir / "s3.json"

    @property
    def _logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def start(self, timeout: float = 60.0) -> None:
        if self.running():
            return
        for flag, port in self._ports.items():
            ensure_port_free(self.host, port, f"weed {flag}")
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self._logs_dir.mkdir(exist_ok=True)
        self._write_s3_config()
        # volumes already on disk must be known to the master before reads of
        # their objects work (a restart would otherwise answer InternalError)
        self._volumes_on_disk = len(list((self.data_dir / "data").glob("*.dat")))
        super().start(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`.

        weed usually exits within ~2.5 s, but its volume server can wait
        forever for an internal reader connection after large GETs; by then
        the filer has closed its metadata store and object data is written,
        so a short grace period loses nothing a crash would not.
        """
        super().stop(timeout=timeout)
        self._remove_sockets()

    def kill(self) -> None:
        super().kill()
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        for path in self._socket_files:
            try:
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
            except OSError:
                pass

    def _write_s3_config(self) -> None:
        identities = {
            "identities": [
                {
                    "name": "pelagos",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        path = self._s3_config_path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(identities, f)

    def _ready_probe(self) -> bool:
        return port_is_open(self.host, self._s3_port) and self._volumes_registered() and self._s3_answers()

    def _volumes_registered(self) -> bool:
        """The volume server has registered with the master, with every
        volume that was on disk at start."""
        url = f"http://{self.host}:{self._ports['master.port']}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                status = json.loads(response.read())
            nodes = [
                node
                for center in status["Topology"]["DataCenters"] or []
                for rack in center["Racks"] or []
                for node in rack["DataNodes"] or []
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        volumes = sum(int(node.get("Volumes", 0)) for node in nodes)
        return bool(nodes) and volumes >= self._volumes_on_disk

    def _s3_answers(self) -> bool:
        """A signed ListBuckets with our key pair succeeds."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=0.5, read=2.0), retries=urllib3.Retry(total=0)
        )
        client = Minio(
            self.s3_endpoint,
            access_key=self._access_key,
            secret_key=self._secret_key,
            secure=False,
            region="us-east-1",
            http_client=http,
        )
        try:
            client.list_buckets()
        except Exception:  # not ready yet: any failure means "ask again"
            return False
        finally:
            http.clear()
        return True
