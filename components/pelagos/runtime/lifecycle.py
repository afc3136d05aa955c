"""Components and their lifecycle: start in dependency order, stop in reverse.

A Component is anything with a `name`, `async start()`, `async stop()` and
`health()`: a child server, a store connection, the HTTP server, a role.
A Lifecycle holds components and the dependencies between them.

Invariants:
- names are unique; a dependency must name a component of the same Lifecycle;
  a cycle is rejected (ValueError) before anything starts;
- `start()` starts a component only after every component it depends on has
  started; components whose dependencies are all started start concurrently
  (one wave at a time);
- when a start fails, every component that did start is stopped (reverse
  order) and the first start error is re-raised;
- `stop()` stops the started components in the reverse order of their start;
  a failing stop is logged and the others are still stopped; `stop()` never
  raises and returns the failures;
- `health()` is healthy only when every component is started and healthy; a
  health probe that raises counts as unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    """One component's health: `ok`, and a short human-readable detail."""

    ok: bool
    detail: str = ""


@runtime_checkable
class Component(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> Health: ...


@dataclass(frozen=True, slots=True)
class LifecycleHealth:
    """Health of every component, by name, and whether all are healthy."""

    ok: bool
    components: dict[str, Health] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "components": {name: {"ok": h.ok, "detail": h.detail} for name, h in self.components.items()},
        }


@dataclass(frozen=True, slots=True)
class StopFailure:
    name: str
    error: BaseException


class Lifecycle:
    """An ordered set of components with dependencies between them."""

    def __init__(self) -> None:
        self._components: dict[str, Component] = {}
        self._depends: dict[str, tuple[str, ...]] = {}
        self._started: list[str] = []  # in the order their start completed

    def add(self, component: Component, depends_on: Iterable[str | Component] = ()) -> Component:
        """Add `component`, to start after every component in `depends_on`."""
        name = component.name
        if name in self._components:
            raise ValueError(f"a component named {name!r} is already in this lifecycle")
        deps = tuple(d if isinstance(d, str) else d.name for d in depends_on)
        if name in deps:
            raise ValueError(f"component {name!r} cannot depend on itself")
        self._components[name] = component
        self._depends[name] = deps
        return component

    def __contains__(self, name: str) -> bool:
        return name in self._components

    def get(self, name: str) -> Component:
        return self._components[name]

    @property
    def components(self) -> list[Component]:
        """Components in the order they were added."""
        return list(self._components.values())

    @property
    def started(self) -> list[str]:
        """Names of the started components, in start order."""
        return list(self._started)

    def waves(self) -> list[list[str]]:
        """Names grouped in start waves: each wave depends only on earlier ones.

        Within a wave, names keep the order they were added in. Raises
        ValueError for a missing dependency or a cycle.
        """
        for name, deps in self._depends.items():
            missing = [d for d in deps if d not in self._components]
            if missing:
                raise ValueError(f"component {name!r} depends on {missing} which are not in this lifecycle")
        placed: set[str] = set()
        waves: list[list[str]] = []
        remaining = list(self._components)
        while remaining:
            wave = [n for n in remaining if all(d in placed for d in self._depends[n])]
            if not wave:
                raise ValueError(
                    f"dependency cycle among components {_describe_cycle(remaining, self._depends)}"
                )
            waves.append(wave)
            placed.update(wave)
            remaining = [n for n in remaining if n not in placed]
        return waves

    def order(self) -> list[str]:
        """Names in a start order that respects every dependency."""
        return [name for wave in self.waves() for name in wave]

    async def start(self) -> None:
        """Start every component not yet started, dependencies first."""
        waves = self.waves()  # validates before anything starts
        for wave in waves:
            todo = [n for n in wave if n not in self._started]
            if not todo:
                continue
            try:
                results = await asyncio.gather(*(self._start_one(n) for n in todo), return_exceptions=True)
            except BaseException:  # cancelled while starting: leave nothing running
                await asyncio.shield(self.stop())
                raise
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                await self.stop()
                raise errors[0]

    async def _start_one(self, name: str) -> None:
        log.debug("starting %s", name)
        await self._components[name].start()
        self._started.append(name)
        log.debug("started %s", name)

    async def stop(self) -> list[StopFailure]:
        """Stop the started components in reverse start order; never raises."""
        failures: list[StopFailure] = []
        while self._started:
            name = self._started.pop()
            try:
                await self._components[name].stop()
                log.debug("stopped %s", name)
            except Exception as exc:
                log.error("stopping %s failed: %s", name, exc, exc_info=exc)
                failures.append(StopFailure(name, exc))
        return failures

    def health(self) -> LifecycleHealth:
        """Every component's health; ok only when all are started and healthy."""
        result: dict[str, Health] = {}
        for name, component in self._components.items():
            if name not in self._started:
                result[name] = Health(False, "not started")
                continue
            try:
                result[name] = component.health()
            except Exception as exc:
                result[name] = Health(False, f"health probe failed: {exc}")
        return LifecycleHealth(ok=all(h.ok for h in result.values()), components=result)


def _describe_cycle(names: Sequence[str], depends: dict[str, tuple[str, ...]]) -> str:
    """One cycle among `names`, as 'a -> b -> a'."""
    pending = set(names)
    start = names[0]
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        node = next(d for d in depends[node] if d in pending)
        if node in seen:
            cycle = [*path[seen[node] :], node]
            return " -> ".join(cycle)
        seen[node] = len(path)
        path.append(node)
