"""Development secrets, generated once into the git-ignored run folder, never committed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from services.common.cipher import generate_key
from services.user.tokens import generate_private_key_pem


def _ensure(path: Path, make: Callable[[], bytes]) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(make())
    return path


def jwt_signing_key(secrets_dir: Path) -> Path:
    return _ensure(secrets_dir / "jwt-signing-key.pem", generate_private_key_pem)


def cipher_key(secrets_dir: Path) -> Path:
    return _ensure(secrets_dir / "cipher.key", lambda: generate_key().encode("ascii") + b"\n")
