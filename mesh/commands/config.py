"""`meshmart config encrypt|decrypt|genkey`: the seed Config Server's /encrypt and /decrypt.

The key comes from --key-file, else $MESHMART_CIPHER_KEY, else $MESHMART_CIPHER_KEY_FILE,
else the development key of `meshmart run` (.cache/run/secrets/cipher.key).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mesh.paths import DEFAULT_RUN_DIR, secrets_dir
from services.common import cipher

DEV_KEY_FILE = secrets_dir(DEFAULT_RUN_DIR) / "cipher.key"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config", help="encrypt/decrypt {cipher} config values", description=__doc__
    )
    parser.add_argument("action", choices=("encrypt", "decrypt", "genkey"))
    parser.add_argument("value", nargs="?", help="the value (default: read from stdin)")
    parser.add_argument("--key-file", type=Path, default=None)
    parser.set_defaults(func=run)


def _key(key_file: Path | None) -> str:
    if key_file is None and (inline := os.environ.get("MESHMART_CIPHER_KEY")):
        return inline
    if key_file is None and (named := os.environ.get("MESHMART_CIPHER_KEY_FILE")):
        key_file = Path(named)
    path = key_file or DEV_KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise cipher.CipherError(
            f"no cipher key: {path} ({exc.strerror}); set MESHMART_CIPHER_KEY or --key-file"
        ) from None


def run(args: argparse.Namespace) -> int:
    if args.action == "genkey":
        print(cipher.generate_key())
        return 0
    value: str = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    try:
        key = _key(args.key_file)
        result = (
            cipher.encrypt(value, key) if args.action == "encrypt" else cipher.decrypt(value, key)
        )
    except cipher.CipherError as exc:
        print(f"meshmart config {args.action}: error: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0
