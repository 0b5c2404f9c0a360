"""npm's semver ranges, as far as workspace linking needs them (pure, no dependencies).

``satisfies("2.0.3", "^2.0.0")`` follows node-semver without ``includePrerelease``: ``||``
unions, space-separated intersections, hyphen ranges, ``^``, ``~``, comparison operators and
partial versions (``1``, ``1.x``, ``*``). A prerelease version only satisfies a comparator set
that names a prerelease of the same ``major.minor.patch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"0|[1-9]\d*|[xX*]"
_PARTIAL = re.compile(
    rf"^v?(?P<major>{_NUM})(?:\.(?P<minor>{_NUM})(?:\.(?P<patch>{_NUM})"
    r"(?:-?(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)?)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|\^|~>|~)?\s*(?P<ver>\S+)$")


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after every prerelease of the same triple; numeric identifiers
        # sort before alphanumeric ones.
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def parse_version(text: str) -> Version | None:
    """A full ``major.minor.patch[-pre]`` version, or None."""
    m = _PARTIAL.match(text.strip().lstrip("=").strip())
    wild = ("x", "X", "*")
    if not m or m["patch"] is None or any(m[k] in wild for k in ("major", "minor", "patch")):
        return None
    return Version(int(m["major"]), int(m["minor"]), int(m["patch"]), _pre(m["pre"]))


Comparator = tuple[str, Version]  # (op in <, <=, >, >=, =), version


def _bump(major: int, minor: int | None = None) -> Version:
    """The lowest prerelease of the next major (or minor): the exclusive upper bound."""
    if minor is None:
        return Version(major + 1, 0, 0, (0,))
    return Version(major, minor + 1, 0, (0,))


def _desugar(op: str, text: str) -> list[Comparator] | None:
    if text in ("", "*", "x", "X"):
        return [(">=", Version(0, 0, 0))]
    m = _PARTIAL.match(text)
    if not m:
        return None
    parts = [m["major"], m["minor"], m["patch"]]
    nums: list[int] = []
    for p in parts:
        if p is None or p in ("x", "X", "*"):
            break
        nums.append(int(p))
    pre = _pre(m["pre"]) if len(nums) == 3 else ()
    if not nums:
        return [("<", Version(0, 0, 0, (0,)))] if op in ("<", ">") else [(">=", Version(0, 0, 0))]
    major = nums[0]
    minor = nums[1] if len(nums) > 1 else 0
    patch = nums[2] if len(nums) > 2 else 0
    low = Version(major, minor, patch, pre)
    if op == "^":
        if major > 0 or len(nums) == 1:
            high = _bump(major)
        elif minor > 0 or len(nums) == 2:
            high = _bump(0, minor)
        else:
            high = Version(0, 0, patch + 1, (0,))
        return [(">=", low), ("<", high)]
    if op in ("~", "~>"):
        high = _bump(major) if len(nums) == 1 else _bump(major, minor)
        return [(">=", low), ("<", high)]
    if len(nums) == 3:
        return [(op or "=", low)]
    upper = _bump(major) if len(nums) == 1 else _bump(major, minor)
    if op in ("", "="):
        return [(">=", low), ("<", upper)]
    if op == ">":
        return [(">=", Version(upper.major, upper.minor, 0))]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", Version(major, minor, 0, (0,)))]
    return [("<", upper)]  # <=


def _hyphen(low: str, high: str) -> list[Comparator] | None:
    lower = _desugar(">=", low)
    m = _PARTIAL.match(high)
    if lower is None or not m:
        return None
    upper = _desugar("<=", high)
    return None if upper is None else [*lower[:1], *upper[-1:]]


def _comparator_set(text: str) -> list[Comparator] | None:
    text = re.sub(r"(<=|>=|<|>|=|\^|~>|~)\s+", r"\1", text.strip())
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        return _hyphen(hyphen[1], hyphen[2])
    out: list[Comparator] = []
    for token in text.split():
        m = _COMPARATOR.match(token)
        if not m:
            return None
        part = _desugar(m["op"] or "", m["ver"])
        if part is None:
            return None
        out.extend(part)
    return out or [(">=", Version(0, 0, 0))]


def _test(op: str, v: Version, bound: Version) -> bool:
    a, b = v.key(), bound.key()
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "=": a == b}[op]


def parse_range(text: str) -> list[list[Comparator]] | None:
    """The range as a union of comparator sets, or None when it is not a semver range
    (a tag, URL, path, git spec or alias)."""
    sets = []
    for part in text.split("||"):
        parsed = _comparator_set(part)
        if parsed is None:
            return None
        sets.append(parsed)
    return sets


def satisfies(version: str, range_text: str) -> bool | None:
    """Whether ``version`` is in ``range_text``; None when either is not semver."""
    v = parse_version(version)
    sets = parse_range(range_text)
    if v is None or sets is None:
        return None
    for comparators in sets:
        if not all(_test(op, v, bound) for op, bound in comparators):
            continue
        if not v.pre or any(
            b.pre and (b.major, b.minor, b.patch) == (v.major, v.minor, v.patch)
            for _, b in comparators
        ):
            return True
    return False
