"""Which columns a search or query returns, from what the user asked."""

from __future__ import annotations

from dataclasses import dataclass

from pelagos.errors import InvalidArgumentError
from pelagos.schema import DYNAMIC_FIELD_NAME, CollectionSchema

COUNT_STAR = "count(*)"


@dataclass(slots=True)
class OutputPlan:
    #: columns to read from segments (schema fields and/or `$meta`)
    columns: list[str]
    #: names reported to the client as output_fields (dynamic keys included)
    reported: list[str]
    count_only: bool = False


def plan_outputs(schema: CollectionSchema, requested: list[str], *, for_query: bool) -> OutputPlan:
    pk = schema.primary_field.name
    names = [n.strip() for n in requested if n and n.strip()]
    if for_query and len(names) == 1 and names[0].lower() == COUNT_STAR:
        return OutputPlan(columns=[], reported=[COUNT_STAR], count_only=True)
    columns: list[str] = []
    reported: list[str] = []

    def add(col: str) -> None:
        if col not in columns:
            columns.append(col)

    for name in names:
        if name.lower() == COUNT_STAR:
            raise InvalidArgumentError("count entities with pagination or other output fields is not allowed")
        if name == "*":
            for f in schema.fields:
                if not f.is_dynamic:
                    add(f.name)
                    if f.name not in reported:
                        reported.append(f.name)
            if schema.enable_dynamic_field:
                add(DYNAMIC_FIELD_NAME)
            continue
        field = schema.field(name)
        if field is not None and not field.is_dynamic:
            add(name)
        elif (name == DYNAMIC_FIELD_NAME and schema.enable_dynamic_field) or schema.enable_dynamic_field:
            add(DYNAMIC_FIELD_NAME)
        else:
            raise InvalidArgumentError(f"field {name} not exist")
        if name not in reported:
            reported.append(name)
    if for_query and pk not in columns:
        columns.insert(0, pk)
        if pk not in reported:
            reported.insert(0, pk)
    return OutputPlan(columns=columns, reported=reported)
