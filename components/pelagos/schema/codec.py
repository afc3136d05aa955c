"""JSON encoding of schemas, for the catalog in the meta store."""

from __future__ import annotations

from typing import Any

from pelagos.schema.types import CollectionSchema, DataType, FieldSchema


def field_to_dict(f: FieldSchema) -> dict[str, Any]:
    return {
        "name": f.name,
        "dtype": int(f.dtype),
        "field_id": f.field_id,
        "description": f.description,
        "is_primary": f.is_primary,
        "auto_id": f.auto_id,
        "nullable": f.nullable,
        "default_value": f.default_value,
        "is_partition_key": f.is_partition_key,
        "is_dynamic": f.is_dynamic,
        "dim": f.dim,
        "max_length": f.max_length,
        "element_type": int(f.element_type) if f.element_type is not None else None,
        "max_capacity": f.max_capacity,
        "type_params": dict(f.type_params),
    }


def field_from_dict(d: dict[str, Any]) -> FieldSchema:
    return FieldSchema(
        name=d["name"],
        dtype=DataType(d["dtype"]),
        field_id=int(d.get("field_id", 0)),
        description=d.get("description", ""),
        is_primary=bool(d.get("is_primary", False)),
        auto_id=bool(d.get("auto_id", False)),
        nullable=bool(d.get("nullable", False)),
        default_value=d.get("default_value"),
        is_partition_key=bool(d.get("is_partition_key", False)),
        is_dynamic=bool(d.get("is_dynamic", False)),
        dim=d.get("dim"),
        max_length=d.get("max_length"),
        element_type=DataType(d["element_type"]) if d.get("element_type") is not None else None,
        max_capacity=d.get("max_capacity"),
        type_params=dict(d.get("type_params") or {}),
    )


def schema_to_dict(s: CollectionSchema) -> dict[str, Any]:
    return {
        "fields": [field_to_dict(f) for f in s.fields],
        "description": s.description,
        "enable_dynamic_field": s.enable_dynamic_field,
    }


def schema_from_dict(d: dict[str, Any]) -> CollectionSchema:
    return CollectionSchema(
        fields=[field_from_dict(f) for f in d["fields"]],
        description=d.get("description", ""),
        enable_dynamic_field=bool(d.get("enable_dynamic_field", False)),
    )
