"""SQL `like` patterns: `%` any run of characters, `_` exactly one, `\\` escapes the next one.

Invariants:
- a pattern is split once into literal runs and wildcards (`LikePattern`);
  the common shapes are recognised so the evaluator can use the cheapest
  Arrow kernel: no wildcard = equality, `abc%` = prefix, `%abc` = suffix,
  `%abc%` = substring; anything else becomes an anchored RE2 regex in
  which every non-alphanumeric literal is written as `\\x{..}` (so no
  character can be mistaken for regex syntax);
- a backslash at the very end of a pattern stands for itself;
- `like_matches` is the same rule on one Python string (constant folding).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

ANY = "%"
ONE = "_"


@dataclass(frozen=True, slots=True)
class LikePattern:
    #: "equal", "prefix", "suffix", "contains" (with `literal`) or "regex" (with `regex`)
    shape: str
    literal: str
    regex: str
    python_regex: re.Pattern[str]


class _Wildcard:
    __slots__ = ("symbol",)

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol


_ANY_RUN = _Wildcard(ANY)
_ONE_CHAR = _Wildcard(ONE)
_Run = str | _Wildcard


def _runs(pattern: str) -> list[_Run]:
    """The pattern as literal runs and wildcards (escapes resolved, `%%` collapsed)."""
    runs: list[_Run] = []
    buf: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            buf.append(pattern[i + 1])
            i += 2
            continue
        if ch in (ANY, ONE):
            if buf:
                runs.append("".join(buf))
                buf = []
            marker = _ANY_RUN if ch == ANY else _ONE_CHAR
            if not (marker is _ANY_RUN and runs and runs[-1] is _ANY_RUN):
                runs.append(marker)
        else:
            buf.append(ch)
        i += 1
    if buf:
        runs.append("".join(buf))
    return runs


def _re2_literal(ch: str) -> str:
    return ch if ch.isalnum() else f"\\x{{{ord(ch):x}}}"


@functools.lru_cache(maxsize=512)
def parse_like(pattern: str) -> LikePattern:
    runs = _runs(pattern)
    re2_parts: list[str] = []
    py_parts: list[str] = []
    for r in runs:
        if isinstance(r, str):
            re2_parts.append("".join(_re2_literal(c) for c in r))
            py_parts.append(re.escape(r))
        else:
            re2_parts.append(".*" if r is _ANY_RUN else ".")
            py_parts.append(".*" if r is _ANY_RUN else ".")
    regex = "(?s)^" + "".join(re2_parts) + "$"
    py = re.compile("".join(py_parts), re.S)
    shape = "".join("L" if isinstance(r, str) else r.symbol for r in runs)
    literal = next((r for r in runs if isinstance(r, str)), "")
    simple = {"": "equal", "L": "equal", "%": "prefix", "L%": "prefix", "%L": "suffix", "%L%": "contains"}
    return LikePattern(simple.get(shape, "regex"), literal, regex, py)


def like_matches(value: str, pattern: str) -> bool:
    """Whether one string matches a `like` pattern."""
    return parse_like(pattern).python_regex.fullmatch(value) is not None
