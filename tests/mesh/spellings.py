"""Generated spellings of a path: every way a client might hope to reach it past a policy.

Each generator rewrites one part of the path (a segment, a slash, a letter) in one way; the
result is the raw request target, sent byte for byte.
"""

from __future__ import annotations

import string
from collections.abc import Iterator

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _encode(char: str, upper: bool = True) -> str:
    code = f"%{ord(char):02X}"
    return code if upper else code.lower()


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _join(segments: list[str], trailing: str = "") -> str:
    return "/" + "/".join(segments) + trailing


def spellings(path: str, detour_prefix: str) -> dict[str, str]:
    """name -> raw target for `path` (e.g. /user-service/users/42); `detour_prefix` is another
    service's public prefix to route through with `..` (e.g. /catalog-service/catalogs)."""
    found: dict[str, str] = {}
    for name, target in _generate(path, detour_prefix):
        if target != path and target not in found.values():
            found.setdefault(name, target)
    return found


def _generate(path: str, detour: str) -> Iterator[tuple[str, str]]:
    segs = _segments(path)
    for i, seg in enumerate(segs):
        letters = [j for j, c in enumerate(seg) if c.isalpha()]
        for j in letters[:2]:  # the first two letters of every segment, each alone
            for upper in (True, False):
                encoded = seg[:j] + _encode(seg[j], upper) + seg[j + 1 :]
                yield (
                    f"seg{i} letter{j} %{'HH' if upper else 'hh'}",
                    _join([*segs[:i], encoded, *segs[i + 1 :]]),
                )
        all_encoded = "".join(_encode(c) if c in UNRESERVED else c for c in seg)
        yield f"seg{i} fully encoded", _join([*segs[:i], all_encoded, *segs[i + 1 :]])
        if letters:
            double = (
                seg[: letters[0]] + "%25" + f"{ord(seg[letters[0]]):02X}" + seg[letters[0] + 1 :]
            )
            yield f"seg{i} double-encoded", _join([*segs[:i], double, *segs[i + 1 :]])
        yield f"seg{i} upper-case", _join([*segs[:i], seg.upper(), *segs[i + 1 :]])
        yield f"seg{i} ;params", _join([*segs[:i], seg + ";x=1", *segs[i + 1 :]])
        yield f"seg{i} NUL", _join([*segs[:i], seg + "%00", *segs[i + 1 :]])
        yield f"before seg{i} ./", _join([*segs[:i], ".", *segs[i:]])
        yield f"before seg{i} %2e/", _join([*segs[:i], "%2e", *segs[i:]])
        yield f"before seg{i} %2E/", _join([*segs[:i], "%2E", *segs[i:]])
        yield f"before seg{i} x/../", _join([*segs[:i], "x", "..", *segs[i:]])
        yield f"before seg{i} x/%2e%2e/", _join([*segs[:i], "x", "%2e%2e", *segs[i:]])
        yield f"before seg{i} //", _join([*segs[:i], "", *segs[i:]])
    for k in range(1, len(segs)):  # each inner slash replaced
        head, tail = "/".join(segs[:k]), "/".join(segs[k:])
        yield f"slash{k} as %2F", f"/{head}%2F{tail}"
        yield f"slash{k} as %2f", f"/{head}%2f{tail}"
        yield f"slash{k} as %5C", f"/{head}%5C{tail}"
        yield f"slash{k} as \\", f"/{head}\\{tail}"
        yield f"slash{k} as //", f"/{head}//{tail}"
    yield "trailing /", path + "/"
    yield "trailing /.", path + "/."
    yield "trailing %2F", path + "%2F"
    yield "trailing ;", path + ";"
    yield "leading //", "/" + path
    yield "../ after it", path + "/../" + segs[-1]
    depth = len(_segments(detour))
    yield "via another prefix ..", detour + "/.." * depth + path
    yield "via another prefix %2e%2e", detour + "/%2e%2e" * depth + path
    yield "via another prefix ..%2F", detour + "/" + "..%2F" * depth + path[1:].replace("/", "%2F")
    yield "via another prefix ..\\", detour + "\\.." * depth + path.replace("/", "\\")
