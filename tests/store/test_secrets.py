"""Refresh tokens survive in the keyring, in parts small enough for Windows, and a locked
keyring is never mistaken for "no token".

No OS keyring is touched: the backends below keep entries in a dict.
"""

from __future__ import annotations

import logging

import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend
from keyring.errors import InitError, KeyringError, KeyringLocked, PasswordDeleteError, PasswordSetError

from backstory_desktop.store.secrets import (
    InsecureKeyringError,
    SecretCorrupted,
    SecretsLocked,
    SecretStore,
    SecretStoreError,
    split_secret,
)

SERVICE = "backstory-desktop-tests"
ALIAS = "practice"
# CRED_MAX_CREDENTIAL_BLOB_SIZE, counted in bytes of UTF-16 as CredWriteW receives the text.
WINDOWS_LIMIT_BYTES = 2560
MIXED_TEXT = "refresh-é-ß-日本-😀-"


def mixed_secret(length: int) -> str:
    """A token-like string of ``length`` characters with 2-byte and 4-byte UTF-16 characters."""
    return (MIXED_TEXT * (length // len(MIXED_TEXT) + 1))[:length]


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps entries in a dict, with the priority of a system keyring."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError(f"{username} not found") from None


class WindowsSizedKeyring(MemoryKeyring):
    """Rejects a value above 2,560 bytes of UTF-16, as CredWriteW does with error 1783."""

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password.encode("utf-16-le")) > WINDOWS_LIMIT_BYTES:
            raise OSError(1783, "The stub received bad data.")
        super().set_password(service, username, password)


class LockableKeyring(MemoryKeyring):
    """Raises ``lock_error`` on every call while ``locked`` is set, like a locked keychain."""

    def __init__(self, lock_error: KeyringError | None = None) -> None:
        super().__init__()
        self.locked = False
        self.lock_error = lock_error or KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise self.lock_error
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.locked:
            raise self.lock_error
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        if self.locked:
            raise self.lock_error
        super().delete_password(service, username)


class SimulatedCrash(BaseException):
    """Stops a save the way a killed process would: no except Exception clause runs."""


class CrashBeforeHeaderSwitch(MemoryKeyring):
    """Once armed, lets the parts be written and dies on the next write of the header."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.parts_written = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.armed and username != ALIAS:
            self.parts_written += 1
        if self.armed and username == ALIAS and self.parts_written:
            raise SimulatedCrash
        super().set_password(service, username, password)


class FailingPartWrites(MemoryKeyring):
    """Once armed, rejects every write except the header's, like a keyring that ran out of space."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.armed and username != ALIAS:
            raise PasswordSetError("Failed to store password!")
        super().set_password(service, username, password)


class LowPriorityKeyring(MemoryKeyring):
    """A backend keyring ranks below its recommended threshold of 1."""

    priority = 0.5  # type: ignore[assignment]


class PlaintextFileKeyring(MemoryKeyring):
    """Stands in for keyrings.alt.file.PlaintextKeyring, whatever its priority."""

    __module__ = "keyrings.alt.file"


class MemoryFirstChain(ChainerBackend):
    """A keyring chain whose first backend is a MemoryKeyring."""

    backends = [MemoryKeyring(), LowPriorityKeyring()]  # type: ignore[assignment]  # noqa: RUF012


def secret_entries(backend: MemoryKeyring) -> dict[str, str]:
    return {username: value for (service, username), value in backend.entries.items() if service == SERVICE}


# Round trips and splitting


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("a" * (WINDOWS_LIMIT_BYTES // 2), id="exactly-2560-bytes"),
        pytest.param("a" * (WINDOWS_LIMIT_BYTES // 2 + 1), id="one-character-over"),
        pytest.param(mixed_secret(2560), id="2560-characters-non-ascii"),
        pytest.param(mixed_secret(10_000), id="10000-characters-non-ascii"),
        pytest.param("😀" * 641, id="only-4-byte-characters"),
    ],
)
def test_secrets__round_trip_through_windows_sized_keyring(secret: str) -> None:
    backend = WindowsSizedKeyring()
    store = SecretStore(SERVICE, backend=backend)

    store.save(ALIAS, secret)

    assert store.load(ALIAS) == secret
    assert store.persistent


def test_windows_sized_keyring__rejects_oversized_value() -> None:
    backend = WindowsSizedKeyring()

    with pytest.raises(OSError, match="1783"):
        backend.set_password(SERVICE, ALIAS, "a" * (WINDOWS_LIMIT_BYTES // 2 + 1))


def test_secrets__secret_at_the_limit_is_one_part() -> None:
    backend = WindowsSizedKeyring()
    store = SecretStore(SERVICE, backend=backend)

    store.save(ALIAS, "a" * (WINDOWS_LIMIT_BYTES // 2))

    # The header and a single part.
    assert len(secret_entries(backend)) == 2


def test_secrets__every_stored_value_fits_the_limit() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)

    store.save(ALIAS, mixed_secret(10_000))

    sizes = [len(value.encode("utf-16-le")) for value in secret_entries(backend).values()]
    assert max(sizes) <= WINDOWS_LIMIT_BYTES
    assert len(sizes) > 2


def test_secrets__configurable_part_size_round_trips() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend, max_part_bytes=10)
    secret = mixed_secret(300)

    store.save(ALIAS, secret)

    assert store.load(ALIAS) == secret
    part_values = [value for username, value in secret_entries(backend).items() if username != ALIAS]
    assert all(len(value.encode("utf-16-le")) <= 10 for value in part_values)


def test_split_secret__keeps_non_bmp_characters_whole() -> None:
    parts = split_secret("a😀b😀", 6)

    assert parts == ["a😀", "b😀"]


def test_split_secret__parts_join_to_the_secret() -> None:
    secret = mixed_secret(5_000)

    parts = split_secret(secret, WINDOWS_LIMIT_BYTES)

    assert "".join(parts) == secret
    assert all(len(part.encode("utf-16-le")) <= WINDOWS_LIMIT_BYTES for part in parts)


def test_secrets__part_size_below_one_character_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_part_bytes"):
        SecretStore(SERVICE, backend=MemoryKeyring(), max_part_bytes=3)


def test_secrets__missing_alias_loads_none() -> None:
    store = SecretStore(SERVICE, backend=MemoryKeyring())

    assert store.load("never-saved") is None


def test_secrets__aliases_do_not_share_secrets() -> None:
    store = SecretStore(SERVICE, backend=MemoryKeyring())

    store.save("practice", "token-one")
    store.save("sandbox", "token-two")

    assert store.load("practice") == "token-one"
    assert store.load("sandbox") == "token-two"


def test_secrets__empty_secret_is_rejected() -> None:
    store = SecretStore(SERVICE, backend=MemoryKeyring())

    with pytest.raises(ValueError, match="non-empty"):
        store.save(ALIAS, "")


# Overwrite and delete


def test_secrets__shorter_overwrite_leaves_no_stale_parts() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, mixed_secret(10_000))

    store.save(ALIAS, "short-token")

    assert store.load(ALIAS) == "short-token"
    assert len(secret_entries(backend)) == 2


def test_secrets__delete_removes_header_and_all_parts() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, mixed_secret(10_000))

    store.delete(ALIAS)

    assert secret_entries(backend) == {}
    assert store.load(ALIAS) is None


def test_secrets__delete_keeps_other_aliases() -> None:
    store = SecretStore(SERVICE, backend=MemoryKeyring())
    store.save("practice", mixed_secret(4_000))
    store.save("sandbox", mixed_secret(4_000))

    store.delete("practice")

    assert store.load("sandbox") == mixed_secret(4_000)


def test_secrets__delete_of_missing_alias_does_nothing() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)

    store.delete(ALIAS)

    assert secret_entries(backend) == {}


def test_secrets__delete_that_leaves_the_header_raises() -> None:
    class UndeletableKeyring(MemoryKeyring):
        def delete_password(self, service: str, username: str) -> None:
            # macOS wraps every delete failure, locked keychain included, in PasswordDeleteError.
            raise PasswordDeleteError("Can't delete password in keychain")

    store = SecretStore(SERVICE, backend=UndeletableKeyring())
    store.save(ALIAS, "token")

    with pytest.raises(SecretStoreError, match="still there"):
        store.delete(ALIAS)


# Crash safety


def test_secrets__crash_before_header_switch_keeps_old_secret() -> None:
    backend = CrashBeforeHeaderSwitch()
    SecretStore(SERVICE, backend=backend).save(ALIAS, "old-token")
    backend.armed = True

    with pytest.raises(SimulatedCrash):
        SecretStore(SERVICE, backend=backend).save(ALIAS, mixed_secret(10_000))

    backend.armed = False
    assert backend.parts_written > 1
    assert SecretStore(SERVICE, backend=backend).load(ALIAS) == "old-token"


def test_secrets__save_after_crash_removes_the_orphaned_parts() -> None:
    backend = CrashBeforeHeaderSwitch()
    SecretStore(SERVICE, backend=backend).save(ALIAS, "old-token")
    backend.armed = True
    with pytest.raises(SimulatedCrash):
        SecretStore(SERVICE, backend=backend).save(ALIAS, mixed_secret(10_000))
    backend.armed = False

    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, "new-token")

    assert store.load(ALIAS) == "new-token"
    assert len(secret_entries(backend)) == 2


def test_secrets__delete_after_crash_removes_the_orphaned_parts() -> None:
    backend = CrashBeforeHeaderSwitch()
    SecretStore(SERVICE, backend=backend).save(ALIAS, "old-token")
    backend.armed = True
    with pytest.raises(SimulatedCrash):
        SecretStore(SERVICE, backend=backend).save(ALIAS, mixed_secret(10_000))
    backend.armed = False

    SecretStore(SERVICE, backend=backend).delete(ALIAS)

    assert secret_entries(backend) == {}


def test_secrets__first_save_crash_loads_none() -> None:
    backend = CrashBeforeHeaderSwitch()
    backend.armed = True

    with pytest.raises(SimulatedCrash):
        SecretStore(SERVICE, backend=backend).save(ALIAS, "first-token")

    backend.armed = False
    assert SecretStore(SERVICE, backend=backend).load(ALIAS) is None


def test_secrets__failed_part_write_keeps_old_secret() -> None:
    backend = FailingPartWrites()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, "old-token")
    backend.armed = True

    with pytest.raises(SecretStoreError, match="Could not save"):
        store.save(ALIAS, "new-token")

    assert store.load(ALIAS) == "old-token"


def test_secrets__missing_part_is_corrupted_not_none() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, mixed_secret(10_000))
    part_key = next(key for key in backend.entries if key[1] != ALIAS)
    del backend.entries[part_key]

    with pytest.raises(SecretCorrupted, match="missing"):
        store.load(ALIAS)


def test_secrets__altered_part_fails_the_checksum() -> None:
    backend = MemoryKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, mixed_secret(10_000))
    part_key = next(key for key in backend.entries if key[1] != ALIAS)
    backend.entries[part_key] = "x" + backend.entries[part_key][1:]

    with pytest.raises(SecretCorrupted, match="checksum"):
        store.load(ALIAS)


def test_secrets__foreign_header_is_corrupted_not_none() -> None:
    backend = MemoryKeyring()
    backend.entries[(SERVICE, ALIAS)] = "a-raw-token-someone-stored-by-hand"
    store = SecretStore(SERVICE, backend=backend)

    with pytest.raises(SecretCorrupted, match="unreadable") as raised:
        store.load(ALIAS)

    assert "a-raw-token" not in str(raised.value)


# Locked keyrings


@pytest.mark.parametrize(
    "lock_error",
    [
        KeyringLocked("Failed to unlock the collection!"),
        InitError("Failed to create the collection"),
        KeyringError("Can't get password from keychain"),
    ],
    ids=["keyring-locked", "init-error", "keyring-error"],
)
def test_secrets__locked_keyring_load_raises_not_none(lock_error: KeyringError) -> None:
    backend = LockableKeyring(lock_error)
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, "good-token")
    backend.locked = True

    with pytest.raises(SecretsLocked, match="Unlock the keyring"):
        store.load(ALIAS)


def test_secrets__locked_keyring_save_raises() -> None:
    backend = LockableKeyring()
    store = SecretStore(SERVICE, backend=backend)
    backend.locked = True

    with pytest.raises(SecretsLocked):
        store.save(ALIAS, "new-token")


def test_secrets__locked_keyring_delete_raises() -> None:
    backend = LockableKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, "good-token")
    backend.locked = True

    with pytest.raises(SecretsLocked):
        store.delete(ALIAS)


def test_secrets__token_survives_a_locked_period() -> None:
    backend = LockableKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, "good-token")

    backend.locked = True
    with pytest.raises(SecretsLocked):
        store.load(ALIAS)
    with pytest.raises(SecretsLocked):
        store.save(ALIAS, "replacement-token")
    backend.locked = False

    assert store.load(ALIAS) == "good-token"
    assert store.persistent


# Backend choice


def test_secrets__low_priority_backend_is_rejected() -> None:
    with pytest.raises(InsecureKeyringError) as raised:
        SecretStore(SERVICE, backend=LowPriorityKeyring())

    message = str(raised.value)
    assert "LowPriorityKeyring" in message
    assert "allow_insecure=True" not in message
    assert "Use this keyring anyway" in message
    assert "allow_insecure_keyring = true in app.toml" in message


def test_secrets__keyrings_alt_backend_is_rejected() -> None:
    with pytest.raises(InsecureKeyringError, match=r"keyrings\.alt"):
        SecretStore(SERVICE, backend=PlaintextFileKeyring())


def test_secrets__insecure_backend_is_used_after_opt_in() -> None:
    backend = LowPriorityKeyring()
    store = SecretStore(SERVICE, backend=backend, allow_insecure=True)

    store.save(ALIAS, "token")

    assert store.load(ALIAS) == "token"
    assert store.persistent
    assert secret_entries(backend) != {}
    assert "not a secure store" in store.storage_notice


@pytest.mark.parametrize("backend_class", [fail.Keyring, null.Keyring], ids=["fail", "null"])
def test_secrets__no_usable_backend_keeps_secrets_in_memory(backend_class: type[KeyringBackend]) -> None:
    store = SecretStore(SERVICE, backend=backend_class())

    store.save(ALIAS, mixed_secret(10_000))

    assert store.load(ALIAS) == mixed_secret(10_000)
    assert not store.persistent
    assert "in memory" in store.storage_notice
    assert "in memory" in store.backend_description()


def test_secrets__memory_fallback_ignores_allow_insecure() -> None:
    store = SecretStore(SERVICE, backend=fail.Keyring(), allow_insecure=True)

    assert not store.persistent


def test_secrets__memory_fallback_ends_with_the_store() -> None:
    SecretStore(SERVICE, backend=fail.Keyring()).save(ALIAS, "token")

    assert SecretStore(SERVICE, backend=fail.Keyring()).load(ALIAS) is None


def test_secrets__memory_fallback_delete_forgets_the_secret() -> None:
    store = SecretStore(SERVICE, backend=fail.Keyring())
    store.save(ALIAS, "token")

    store.delete(ALIAS)

    assert store.load(ALIAS) is None


def test_secrets__in_memory_store_states_the_reason() -> None:
    store = SecretStore.in_memory(SERVICE, reason="the keyring backend stores secrets in plain text")

    assert not store.persistent
    assert "plain text" in store.storage_notice


def test_secrets__backend_description_names_backend_and_priority() -> None:
    store = SecretStore(SERVICE, backend=MemoryKeyring())

    description = store.backend_description()

    assert "MemoryKeyring" in description
    assert "priority 5" in description
    assert "system keyring" in store.storage_notice


def test_secrets__chain_is_judged_by_its_first_backend() -> None:
    store = SecretStore(SERVICE, backend=MemoryFirstChain())

    store.save(ALIAS, "token")

    assert "MemoryKeyring" in store.backend_description()
    assert store.load(ALIAS) == "token"


def test_secrets__default_backend_comes_from_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)

    store = SecretStore(SERVICE)
    store.save(ALIAS, "token")

    assert secret_entries(backend) != {}
    assert "MemoryKeyring" in store.backend_description()


# Secrets stay out of logs and messages


def test_secrets__secret_never_reaches_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    secret = "SECRET-" + mixed_secret(4_000)
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    backend = LockableKeyring()
    store = SecretStore(SERVICE, backend=backend)
    store.save(ALIAS, secret)
    store.load(ALIAS)
    backend.locked = True
    for operation in (lambda: store.load(ALIAS), lambda: store.save(ALIAS, secret)):
        with pytest.raises(SecretsLocked) as raised:
            operation()
        messages.append(str(raised.value))
    backend.locked = False
    store.delete(ALIAS)
    SecretStore(SERVICE, backend=fail.Keyring()).save(ALIAS, secret)

    assert caplog.records
    assert "SECRET-" not in caplog.text
    assert all("SECRET-" not in message for message in messages)
