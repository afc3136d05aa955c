"""Milvus key/value parameters, template values and consistency options.

Invariants:
- pymilvus writes values with `str()` (True -> "True", 10 -> "10") and dicts as
  JSON; booleans accept True/true/1 and False/false/0, anything else is an
  InvalidArgumentError naming the key;
- index parameters reach the proxy flat, as strings: `index_type`,
  `metric_type` and every build parameter, whether the client sent them flat
  (`M`, `efConstruction`) or as JSON under `params`; no `index_type` means
  AUTOINDEX; DescribeIndex gives them back as `index_type`, `metric_type` and a
  `params` JSON of the build parameters (what pymilvus decodes);
- template values (`expr_template_values`) become plain Python values: bool,
  int, float, str, bytes, lists (nested), JSON elements decoded;
- consistency: the level is passed only when the client did not ask for the
  collection default; the proxy decides what a level means.

Pure: protobuf only, no gRPC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from pelagos.errors import InvalidArgumentError
from pelagos.interfaces.types import ConsistencyLevel, ReadOptions

AUTOINDEX = "AUTOINDEX"
_INDEX_TOP_KEYS = ("index_type", "metric_type")


def kv_dict(pairs: Iterable[common_pb2.KeyValuePair]) -> dict[str, str]:
    return {kv.key: kv.value for kv in pairs}


def kv_pairs(values: Mapping[str, Any]) -> list[common_pb2.KeyValuePair]:
    return [
        common_pb2.KeyValuePair(key=k, value=v if isinstance(v, str) else str(v)) for k, v in values.items()
    ]


def parse_bool(text: str, key: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0", ""):
        return False
    raise InvalidArgumentError(f"{key}={text!r} is not a boolean; use True or False")


def parse_int(text: str, key: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value.is_integer():
            return int(value)
        raise InvalidArgumentError(f"{key}={text!r} is not an integer") from None


def parse_float(text: str, key: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidArgumentError(f"{key}={text!r} is not a number") from None


def parse_json_object(text: str, key: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{key} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{key} must be a JSON object, got {text!r}")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- indexes -------------------------------------------------------------------


def index_params_from_proto(pairs: Iterable[common_pb2.KeyValuePair]) -> dict[str, str]:
    """CreateIndex.extra_params as the flat string dict the proxy takes."""
    raw = kv_dict(pairs)
    out: dict[str, str] = {}
    nested = raw.pop("params", None)
    if nested is not None:
        for k, v in parse_json_object(nested, "index params").items():
            out[k] = _text(v)
    for k, v in raw.items():
        if k in out and out[k] != v:
            raise InvalidArgumentError(
                f"index parameter {k} is given twice with different values ({out[k]} and {v})"
            )
        out[k] = v
    if not out.get("index_type"):
        out["index_type"] = AUTOINDEX
    return out


def index_params_to_proto(params: Mapping[str, str]) -> list[common_pb2.KeyValuePair]:
    """IndexInfo.params as DescribeIndex shows them: index_type, metric_type, params JSON."""
    pairs = [common_pb2.KeyValuePair(key=k, value=params[k]) for k in _INDEX_TOP_KEYS if k in params]
    build = {k: _json_value(v) for k, v in params.items() if k not in _INDEX_TOP_KEYS}
    if build:
        pairs.append(common_pb2.KeyValuePair(key="params", value=json.dumps(build)))
    return pairs


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --- template values -----------------------------------------------------------


def template_values(values: Mapping[str, schema_pb2.TemplateValue]) -> dict[str, Any]:
    """`expr_template_values` as plain Python values for the filter's placeholders."""
    return {name: _template_value(v, name) for name, v in values.items()}


def _template_value(v: schema_pb2.TemplateValue, name: str) -> Any:
    slot = v.WhichOneof("val")
    if slot is None:
        raise InvalidArgumentError(f"template value {name!r} is empty")
    if slot == "array_val":
        return _template_array(v.array_val, name)
    return getattr(v, slot)


def _template_array(a: schema_pb2.TemplateArrayValue, name: str) -> list[Any]:
    slot = a.WhichOneof("data")
    if slot is None:
        return []
    if slot == "array_data":
        return [_template_array(x, name) for x in a.array_data.data]
    if slot == "json_data":
        try:
            return [json.loads(x) for x in a.json_data.data]
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"template value {name!r} holds invalid JSON: {exc}") from exc
    return list(getattr(a, slot).data)


# --- consistency ---------------------------------------------------------------


def read_options(
    *,
    partition_names: Iterable[str],
    use_default_consistency: bool,
    consistency_level: int,
    guarantee_timestamp: int,
    ignore_growing: bool = False,
) -> ReadOptions:
    level: ConsistencyLevel | None = None
    if not use_default_consistency:
        try:
            level = ConsistencyLevel(consistency_level)
        except ValueError:
            raise InvalidArgumentError(f"unknown consistency level {consistency_level}") from None
    return ReadOptions(
        partitions=list(partition_names),
        consistency_level=level,
        guarantee_ts=guarantee_timestamp,
        ignore_growing=ignore_growing,
    )
