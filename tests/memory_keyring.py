"""Keyring backends for tests, so no test reads or writes the developer's own keychain.

tests/conftest.py installs MemoryKeyring for every test, and names it in
PYTHON_KEYRING_BACKEND for the subprocesses a test starts.
"""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, NoKeyringError, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """Entries in a dict, with the priority of a system keyring; ``writes`` lists every value saved."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.writes: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password
        self.writes.append(password)

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError(f"{username} not found") from None

    def values(self) -> list[str]:
        """Return every value stored now, headers and secret parts alike."""
        return list(self.entries.values())


class FailingKeyring(MemoryKeyring):
    """Looks like a system keyring but raises NoKeyringError on every call, as with no D-Bus session."""

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("No recommended backend was available (test keyring)")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("No recommended backend was available (test keyring)")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("No recommended backend was available (test keyring)")


class LockableKeyring(MemoryKeyring):
    """Raises KeyringLocked on every call while ``locked`` is set, like a keychain left locked."""

    def __init__(self) -> None:
        super().__init__()
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        self._check_unlocked()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check_unlocked()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._check_unlocked()
        super().delete_password(service, username)

    def _check_unlocked(self) -> None:
        if self.locked:
            raise KeyringLocked("Failed to unlock the collection!")
