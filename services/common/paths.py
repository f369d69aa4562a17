"""One spelling per resource: paths that could mean two things are refused before routing.

aiohttp decodes percent-escapes before it routes, so `/%75sers` reaches the `/users` handler
while a policy that matched the raw text saw something else. The mesh normalises paths at
every proxy (DECODE_AND_MERGE_SLASHES); this is the service's own defence in depth, for
whatever reaches it some other way: a request whose path is not the canonical spelling gets a
400 problem+json and no handler runs.
"""

from __future__ import annotations

import re
import string

from aiohttp import web

from services.common.errors import Handler, problem_response

# RFC 3986 unreserved characters: encoding one gives a second spelling of the same path.
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# Escapes that change a path's structure or hide a second decoding.
_STRUCTURAL = frozenset("/\\%")
_ESCAPE = re.compile(r"%(..)?", re.DOTALL)


def ambiguity(path: str) -> str | None:
    """Why the raw path (without the query) is not canonical, or None when it is."""
    if "\\" in path:
        return "backslash in path"
    if ";" in path:
        return "path parameters (;) in path"
    segments = path.split("/")[1:]
    if path != "/" and "" in segments:
        return "empty path segment (// or a trailing /)"
    if any(segment in (".", "..") for segment in segments):
        return "dot segment in path"
    for match in _ESCAPE.finditer(path):
        hex_digits = match.group(1)
        if hex_digits is None or not all(c in string.hexdigits for c in hex_digits):
            return "malformed percent-escape in path"
        char = chr(int(hex_digits, 16))
        if char in _UNRESERVED or char in _STRUCTURAL or ord(char) < 0x20 or ord(char) == 0x7F:
            return f"percent-encoded {char!r} in path"
    return None


@web.middleware
async def canonical_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    reason = ambiguity(request.raw_path.split("?", 1)[0])
    if reason is not None:
        return problem_response(400, f"non-canonical path: {reason}")
    return await handler(request)
