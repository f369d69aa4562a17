"""Istio's host name semantics (pkg/config/host): exact names and `*`-prefixed wildcards."""

from __future__ import annotations


def is_wildcard(name: str) -> bool:
    return name.startswith("*")


def subset_of(name: str, other: str) -> bool:
    """Name.SubsetOf: every host `name` matches, `other` matches too."""
    if is_wildcard(name):
        return is_wildcard(other) and name[1:].endswith(other[1:])
    if not is_wildcard(other):
        return name == other
    return name.endswith(other[1:])


def overlap(name: str, other: str) -> bool:
    """Name.Matches: some host matches both."""
    return subset_of(name, other) or subset_of(other, name)


def intersection(names: list[str], others: list[str]) -> list[str]:
    """Names.Intersection: for each overlapping pair, the more specific of the two."""
    result: list[str] = []
    for name in names:
        for other in others:
            narrower = name if subset_of(name, other) else other if subset_of(other, name) else None
            if narrower is not None and narrower not in result:
                result.append(narrower)
    return result
