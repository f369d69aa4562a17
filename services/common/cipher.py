"""`{cipher}` values in settings: the seed Config Server's encrypt/decrypt, with Fernet.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) authenticates the ciphertext, so a
wrong key or a tampered value fails loudly instead of decrypting to garbage.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "{cipher}"


class CipherError(ValueError):
    """A value could not be encrypted or decrypted (message never contains the key)."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CipherError(
            "the cipher key is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from exc


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt(plaintext: str, key: str) -> str:
    return PREFIX + _fernet(key).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(value: str, key: str) -> str:
    if not is_encrypted(value):
        raise CipherError(f"value does not start with {PREFIX}")
    token = value.removeprefix(PREFIX).strip()
    try:
        return _fernet(key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise CipherError("cannot decrypt: wrong key or corrupted value") from exc
