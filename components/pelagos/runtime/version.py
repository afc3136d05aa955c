"""The installed Pelagos version (from the package metadata, no heavy imports)."""

from __future__ import annotations

from importlib import metadata


def pelagos_version() -> str:
    try:
        return metadata.version("pelagos")
    except metadata.PackageNotFoundError:
        return "0+unknown"
