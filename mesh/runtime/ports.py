"""Loopback ports and readiness probes: is a port free, does a server answer on it.

Ports are chosen before the servers bind them, and `meshmart run` starts PostgreSQL, Kafka and
Zipkin side by side: two of them asking the kernel for a free port at once can be handed the
same one. So every port chosen in this process is claimed, with the server it is for, and no
port claimed by one server is chosen for another.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.request
from pathlib import Path

# No proxy, whatever $http_proxy says: every server we probe is on loopback.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


_CLAIMS: dict[int, str] = {}  # port -> the server it was chosen for, in this process
_CLAIMS_LOCK = threading.Lock()


def free_port(owner: str | None = None) -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel's choice) and that no
    other server in this process has been given; claimed for `owner`."""
    with _CLAIMS_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in _CLAIMS:
                _CLAIMS[port] = owner or f"port {port}"
                return port


def claim(port: int, owner: str) -> bool:
    """Claim `port` for `owner` (a server's folder, say); False if another owner has it."""
    with _CLAIMS_LOCK:
        return _CLAIMS.setdefault(port, owner) == owner


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
