"""Loopback ports and readiness probes: is a port free, does a server answer on it."""

from __future__ import annotations

import http.client
import socket
import urllib.request
from pathlib import Path

# No proxy, whatever $http_proxy says: every server we probe is on loopback.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Can a server bind 127.0.0.1:`port`? TIME_WAIT leftovers do not count as taken: the
    servers we start (PostgreSQL, the JVMs) set SO_REUSEADDR too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def accepts(port: int) -> bool:
    """Does something accept TCP connections on 127.0.0.1:`port`?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET `url` answers 200 (refused, a 503 while starting, or a timeout: not yet)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


def unix_http_ok(path: Path, target: str = "/health/ready") -> bool:
    """GET over a unix socket: is the app itself ready, without going through the mesh."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(path))
            conn.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            status_line = conn.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]
