"""The typed configuration of every Pelagos process.

One `Config` model, one section per concern (`server`, `log`, `meta`,
`objects`, `dataset`, `query`, `logging`, plus the top-level `data_dir`).
`load_config` builds it from four sources, later ones overriding earlier ones
key by key:

    defaults  <  config file (TOML, or YAML)  <  PELAGOS_* environment  <  command-line flags

Environment variables name a key by its path, upper-cased, sections joined by
a double underscore: `PELAGOS_SERVER__PORT=19531`, `PELAGOS_DATA_DIR=/var/pelagos`,
`PELAGOS_META__ENDPOINTS=127.0.0.1:2379,127.0.0.1:2381` (lists: commas or JSON;
an empty value unsets an optional key).

Invariants:
- every model forbids extra keys, so a typo is an error and never silently ignored;
- every error is a ConfigError that names the key, the source it came from
  (file path, environment variable or flag) and the allowed keys or values;
- a PELAGOS_* variable is read as configuration when it contains a double
  underscore or starts with a top-level key (`PELAGOS_LOG_LEVEL` is therefore
  an error pointing at `PELAGOS_LOGGING__LEVEL`); `PELAGOS_CONFIG` names the
  config file; other PELAGOS_* variables are not configuration;
- a loaded Config is immutable (frozen models); `Config.dump()` renders TOML
  that `load_config` reads back to the same Config (secrets masked unless asked).
"""

from __future__ import annotations

import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from pelagos.datanode.sealing import LOCALITY_MIN_BYTES, SEAL_IDLE_SECONDS, SEGMENT_MAX_BYTES
from pelagos.errors import ConfigError
from pelagos.storage.log.protocol import ChannelLimits

ENV_PREFIX = "PELAGOS_"
ENV_CONFIG_FILE = "PELAGOS_CONFIG"
MiB = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ServerConfig(_Section):
    """Where the Milvus-protocol endpoint and the metrics endpoint listen."""

    host: str = Field("127.0.0.1", description="address the gRPC and HTTP servers bind")
    port: int = Field(19530, ge=1, le=65535, description="Milvus gRPC port")
    metrics_port: int = Field(9091, ge=1, le=65535, description="HTTP port of /metrics and /healthz")
    transport: Literal["pelagos", "grpcio"] = Field(
        "pelagos",
        description="gRPC server of the Milvus port: pelagos (lean HTTP/2, default) or grpcio (grpc.aio)",
    )
    busy_poll_us: int = Field(
        500,
        ge=0,
        le=100_000,
        description="after each answer, poll instead of sleeping this long (0: off; transport pelagos only)",
    )


class RetentionConfig(_Section):
    """Retention of each shard channel in the log broker (unset: unlimited)."""

    max_age_seconds: float | None = Field(None, gt=0, description="drop messages older than this")
    max_bytes: int | None = Field(None, gt=0, description="cap on the bytes a channel keeps")
    max_messages: int | None = Field(None, gt=0, description="cap on the messages a channel keeps")

    def as_limits(self) -> ChannelLimits:
        """These limits as the log broker takes them."""
        return ChannelLimits(self.max_age_seconds, self.max_bytes, self.max_messages)


class LogConfig(_Section):
    """The log broker (NATS JetStream) that carries every write."""

    kind: Literal["jetstream"] = Field("jetstream", description="log broker implementation")
    nats_url: str = Field("", description="NATS server URL; empty: standalone starts its own nats-server")
    nats_port: int | None = Field(
        None, ge=1, le=65535, description="port of the nats-server standalone starts (unset: remembered/free)"
    )
    stream_prefix: str = Field("pelagos", min_length=1, description="prefix of JetStream stream names")
    max_payload: int = Field(
        8 * MiB, ge=1024, le=64 * MiB, description="largest message the own nats-server accepts (bytes)"
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)


class MetaConfig(_Section):
    """The meta store (etcd): the single source of truth about collections."""

    kind: Literal["etcd"] = Field("etcd", description="meta store implementation")
    endpoints: list[str] = Field(
        default_factory=list, description="etcd endpoints host:port; empty: standalone starts its own etcd"
    )
    root: str = Field("pelagos", min_length=1, description="key prefix of this cluster in etcd")
    lease_ttl_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="TTL of session and election leases (reserved: no leases are taken yet)",
    )
    etcd_client_port: int | None = Field(
        None, ge=1, le=65535, description="client port of the etcd standalone starts (unset: remembered/free)"
    )
    etcd_peer_port: int | None = Field(
        None, ge=1, le=65535, description="peer port of the etcd standalone starts (unset: remembered/free)"
    )


class S3Config(_Section):
    """An S3-compatible object store (S3, MinIO, SeaweedFS)."""

    endpoint: str = Field("", description="host:port of the S3 endpoint")
    access_key: str = Field("", description="access key id")
    secret_key: SecretStr = Field(SecretStr(""), description="secret access key")
    bucket: str = Field("pelagos", min_length=3, description="bucket holding every object")
    prefix: str = Field("", description="key prefix inside the bucket")
    secure: bool = Field(False, description="use HTTPS")


class ObjectsConfig(_Section):
    """Where sealed segments, delete logs and indexes are stored."""

    kind: Literal["local", "s3"] = Field("local", description="object store implementation")
    local_root: Path | None = Field(
        None, description="directory of the local store (unset: <data_dir>/objects)"
    )
    s3: S3Config = Field(default_factory=S3Config)


class DatasetConfig(_Section):
    """Shards and segments (Milvus defaults where Milvus has one)."""

    shards_num: int = Field(1, ge=1, le=64, description="default number of shards of a new collection")
    segment_max_bytes: int = Field(
        SEGMENT_MAX_BYTES,
        ge=MiB,
        description="seal a growing segment at this size (Milvus 2.4+ uses 1 GiB too)",
    )
    segment_max_rows: int | None = Field(
        None, ge=1, description="also seal at this many rows (unset: by size)"
    )
    seal_idle_seconds: float = Field(
        SEAL_IDLE_SECONDS, gt=0, description="seal a growing segment idle for this long"
    )
    locality_order_min_bytes: int | None = Field(
        LOCALITY_MIN_BYTES,
        ge=0,
        description="write a sealed segment with rows close in vector space close in memory once its"
        " vectors reach this size (at 1M rows: 12% more HNSW searches/s, for a k-means and a second"
        " copy of the vectors for a moment when sealing); unset: insertion order",
    )
    time_tick_interval_ms: int = Field(200, ge=10, le=10_000, description="interval of channel time ticks")
    max_vector_dim: int = Field(
        32768, ge=1, description="largest vector dimension a field may declare (reserved: the limit is 32768)"
    )


class QueryConfig(_Section):
    """Search and query defaults."""

    default_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Bounded",
        description="consistency level of a collection that names none (reserved: pymilvus always names one)",
    )
    graceful_time_ms: int = Field(5000, ge=0, description="staleness allowed by Bounded consistency")
    max_topk: int = Field(
        16384,
        ge=1,
        le=1_000_000,
        description="largest limit (topk) of a search (reserved: the limit is 16384)",
    )
    search_threads: int = Field(0, ge=0, le=1024, description="threads of vector search; 0: one per CPU")
    filter_cache_mb: int = Field(
        256, ge=0, description="memory for filter results kept per segment (masks, gathered vectors); 0: off"
    )


class LoggingConfig(_Section):
    """Process logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")


class Config(_Section):
    """The whole configuration of a Pelagos process."""

    data_dir: Path = Field(Path("./data"), description="directory of standalone's data (nats, etcd, objects)")
    server: ServerConfig = Field(default_factory=ServerConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    meta: MetaConfig = Field(default_factory=MetaConfig)
    objects: ObjectsConfig = Field(default_factory=ObjectsConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    query: QueryConfig = Field(default_factory=QueryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    def dump(self, *, show_secrets: bool = False) -> str:
        """The configuration as TOML, each key with its description as a comment."""
        lines: list[str] = ["# Pelagos configuration (pelagos config show)"]
        _dump_model(self, (), lines, show_secrets)
        return "\n".join(lines) + "\n"

    @property
    def objects_root(self) -> Path:
        """Directory of the local object store."""
        return self.objects.local_root or self.data_dir / "objects"


# --- loading -----------------------------------------------------------------

_Source = str  # "defaults", "file /path", "environment variable PELAGOS_X", "flag --x"


def load_config(
    file: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> Config:
    """Build the Config: defaults < `file` < PELAGOS_* in `env` < `overrides`.

    `env` defaults to os.environ; when `file` is None, PELAGOS_CONFIG in `env`
    names the file. `overrides` maps dotted keys ("server.port") to values, as
    the CLI's flags give them; `override_sources` names the flag of each key
    for error messages.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], _Source] = {}

    if file is None and env.get(ENV_CONFIG_FILE):
        file = env[ENV_CONFIG_FILE]
    if file is not None:
        path = Path(file)
        file_data = _read_file(path)
        source = f"config file {path}"
        _check_keys(file_data, Config, (), source)
        _merge(data, file_data, (), sources, source)

    for name in sorted(env):
        if name == ENV_CONFIG_FILE:
            continue
        key = _env_key(name)
        if key is None:
            continue
        source = f"environment variable {name}"
        model, field = _resolve(key, source, name)
        _set(data, key, _env_value(env[name], model.model_fields[field].annotation), sources, source)

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        key = tuple(dotted.split("."))
        source = (override_sources or {}).get(dotted, f"override {dotted}")
        _resolve(key, source, dotted)
        _set(data, key, value, sources, source)

    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml  # type: ignore[import-untyped]

            loaded = yaml.safe_load(raw) or {}
        elif suffix == ".toml":
            loaded = tomllib.loads(raw.decode())
        else:
            raise ConfigError(f"config file {path}: unknown format {suffix!r}; use .toml, .yaml or .yml")
    except ConfigError:
        raise
    except Exception as exc:  # tomllib/yaml/unicode errors: say which file and why
        raise ConfigError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a table of sections, not {type(loaded).__name__}")
    return loaded


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _allowed_keys(model: type[BaseModel], path: tuple[str, ...]) -> str:
    where = f"[{'.'.join(path)}]" if path else "the top level"
    return f"allowed keys in {where}: {', '.join(model.model_fields)}"


def _check_keys(data: Mapping[str, Any], model: type[BaseModel], path: tuple[str, ...], source: str) -> None:
    """Unknown keys in a file, found before merging so the source is exact."""
    for key, value in data.items():
        if key not in model.model_fields:
            dotted = ".".join((*path, str(key)))
            raise ConfigError(f"unknown config key {dotted!r} in {source}; {_allowed_keys(model, path)}")
        sub = _section_model(model.model_fields[key].annotation)
        if sub is not None and isinstance(value, Mapping):
            _check_keys(value, sub, (*path, key), source)


def _merge(
    into: dict[str, Any],
    new: Mapping[str, Any],
    path: tuple[str, ...],
    sources: dict[tuple[str, ...], _Source],
    source: _Source,
) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, (*path, key), sources, source)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value, (*path, key), sources, source)
        else:
            into[key] = value
            sources[(*path, key)] = source


def _set(
    data: dict[str, Any],
    key: tuple[str, ...],
    value: Any,
    sources: dict[tuple[str, ...], _Source],
    source: _Source,
) -> None:
    node = data
    for part in key[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[key[-1]] = value
    sources[key] = source


def _env_key(name: str) -> tuple[str, ...] | None:
    """The key path a PELAGOS_* variable names, or None when it is no config variable."""
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX) :].lower()
    if "__" in rest:
        return tuple(rest.split("__"))
    for top in Config.model_fields:
        if rest == top or rest.startswith(top + "_"):
            return (rest,)
    return None


def _resolve(key: tuple[str, ...], source: str, shown: str) -> tuple[type[BaseModel], str]:
    """The model and field a key path ends at; ConfigError when no such key."""
    model: type[BaseModel] = Config
    for i, part in enumerate(key):
        path = key[:i]
        if part not in model.model_fields:
            hint = ""
            if source.startswith("environment") and "__" not in shown:
                hint = " (nested keys are joined by a double underscore, e.g. PELAGOS_SERVER__PORT)"
            raise ConfigError(
                f"unknown config key {'.'.join(key)!r} from {source}{hint}; {_allowed_keys(model, path)}"
            )
        sub = _section_model(model.model_fields[part].annotation)
        if i == len(key) - 1:
            if sub is not None:
                raise ConfigError(
                    f"config key {'.'.join(key)!r} from {source} is a section, not a value; "
                    f"set one of its keys ({', '.join(sub.model_fields)})"
                )
            return model, part
        if sub is None:
            raise ConfigError(
                f"config key {'.'.join(key[: i + 1])!r} is a value, not a section; "
                f"{source} cannot set {'.'.join(key)!r}"
            )
        model = sub
    raise ConfigError(f"empty config key from {source}")


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


def _allows_none(annotation: Any) -> bool:
    return annotation is None or type(None) in typing.get_args(annotation)


def _env_value(raw: str, annotation: Any) -> Any:
    """An environment string as the field wants it; pydantic converts the scalars.

    An empty value unsets an optional key (PELAGOS_LOG__NATS_PORT= means unset).
    """
    if raw == "" and _allows_none(annotation):
        return None
    if _is_list(annotation):
        text = raw.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return raw  # pydantic says "Input should be a valid list"
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw


def _config_error(exc: ValidationError, sources: Mapping[tuple[str, ...], _Source]) -> ConfigError:
    problems: list[str] = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        source = "defaults"
        for n in range(len(loc), 0, -1):
            if loc[:n] in sources:
                source = sources[loc[:n]]
                break
        dotted = ".".join(loc)
        if err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            problems.append(
                f"unknown config key {dotted!r} from {source}; {_allowed_keys(model, loc[:-1])}"
                if model
                else f"unknown config key {dotted!r} from {source}"
            )
        else:
            shown = "***" if loc and loc[-1] in ("secret_key",) else repr(err.get("input"))
            problems.append(f"config key {dotted!r} = {shown} from {source}: {err['msg']}")
    return ConfigError("; ".join(problems))


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Config
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _section_model(model.model_fields[part].annotation)
    return model


# --- dumping -----------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _dump_model(model: BaseModel, path: tuple[str, ...], lines: list[str], show_secrets: bool) -> None:
    sections: list[tuple[str, BaseModel]] = []
    if path:
        lines.append("")
        lines.append(f"[{'.'.join(path)}]")
        doc = (type(model).__doc__ or "").strip().splitlines()
        if doc:
            lines.append(f"# {doc[0]}")
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
            continue
        comment = f"  # {field.description}" if field.description else ""
        if isinstance(value, SecretStr):
            value = value.get_secret_value() if show_secrets or not value.get_secret_value() else "***"
        if value is None:
            lines.append(f"# {name} = (unset){comment}")
        else:
            lines.append(f"{name} = {_toml_value(value)}{comment}")
    for name, sub in sections:
        _dump_model(sub, (*path, name), lines, show_secrets)
