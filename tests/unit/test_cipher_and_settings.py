from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common import cipher
from services.common.settings import ServiceSettings
from services.user.settings import UserSettings

KEY = cipher.generate_key()


def test_round_trip() -> None:
    encrypted = cipher.encrypt("s3cret-value", KEY)
    assert encrypted.startswith("{cipher}") and "s3cret" not in encrypted
    assert cipher.decrypt(encrypted, KEY) == "s3cret-value"


def test_wrong_key_fails_loudly() -> None:
    encrypted = cipher.encrypt("x", KEY)
    with pytest.raises(cipher.CipherError, match="wrong key"):
        cipher.decrypt(encrypted, cipher.generate_key())


def test_tampered_value_fails() -> None:
    encrypted = cipher.encrypt("x", KEY)
    with pytest.raises(cipher.CipherError):
        cipher.decrypt(encrypted[:-4] + "AAAA", KEY)


def test_settings_decrypt_cipher_values(monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = "postgresql://app:Real-Pass-42@127.0.0.1:5432/db"
    monkeypatch.setenv("MESHMART_DATABASE_URL", cipher.encrypt(dsn, KEY))
    monkeypatch.setenv("MESHMART_CIPHER_KEY", KEY)
    assert ServiceSettings().database_url.get_secret_value() == dsn


def test_settings_read_key_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("MESHMART_DATABASE_URL", cipher.encrypt("postgresql://a:b@h/d", KEY))
    monkeypatch.setenv("MESHMART_CIPHER_KEY_FILE", str(key_file))
    assert ServiceSettings().database_url.get_secret_value() == "postgresql://a:b@h/d"


def test_encrypted_value_without_key_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHMART_DATABASE_URL", cipher.encrypt("x", KEY))
    with pytest.raises(ValidationError, match="database_url") as info:
        ServiceSettings()
    assert KEY not in str(info.value)


def test_secrets_are_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHMART_DATABASE_URL", "postgresql://a:TopSecret99@h/d")
    settings = ServiceSettings()
    assert "TopSecret99" not in repr(settings) and "TopSecret99" not in str(settings.model_dump())


@pytest.mark.parametrize("password", ["postgres", "changeme", None])
def test_placeholder_database_password_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    auth = f"app:{password}" if password else "app"
    monkeypatch.setenv("MESHMART_DATABASE_URL", f"postgresql://{auth}@h/d")
    monkeypatch.setenv("MESHMART_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="database_url"):
        ServiceSettings()
    monkeypatch.setenv("MESHMART_ENVIRONMENT", "development")
    ServiceSettings()  # fine for a laptop


def test_user_settings_need_exactly_one_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="MESHMART_JWT_SIGNING_KEY"):
        UserSettings()
    monkeypatch.setenv("MESHMART_JWT_SIGNING_KEY", "pem")
    monkeypatch.setenv("MESHMART_JWT_SIGNING_KEY_FILE", "/nonexistent")
    with pytest.raises(ValidationError, match="exactly one"):
        UserSettings()
