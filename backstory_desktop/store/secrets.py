"""Refresh tokens of org profiles, kept in the OS keyring and never in files or logs.

Every secret is stored as a small header entry under the profile alias plus one
or more numbered parts, so that a long token fits Windows Credential Manager.
A save writes the parts under a new generation id, then switches the header to
it, then deletes the old generation. A crash at any step leaves either the old
or the new secret readable, never a mix of the two.

Backends that keyring itself does not recommend (plain-text or file-based ones,
priority below 1) are rejected unless the caller opts in. With no usable backend
at all, secrets are kept in this object's memory until the process exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend
from keyring.errors import InitError, KeyringError, KeyringLocked, NoKeyringError, PasswordDeleteError

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "backstory-desktop"

# CRED_MAX_CREDENTIAL_BLOB_SIZE in wincred.h is 5 * 512 = 2,560 bytes. keyring's Windows
# backend hands the text to CredWriteW through pywin32-ctypes, which stores it as UTF-16,
# so the limit is 1,280 characters of the Basic Multilingual Plane and 640 above it.
# Larger blobs fail with error 1783 "The stub received bad data" (jaraco/keyring#355).
WINDOWS_MAX_CREDENTIAL_BLOB_BYTES = 2560

# keyring.core.recommended() in keyring 25 is `priority >= 1`, and the KeyringBackend.priority
# docstring calls a priority of one or greater "recommended".
MIN_RECOMMENDED_PRIORITY = 1.0

HEADER_FORMAT = 1
GENERATION_ID_LENGTH = 16
# The smallest part must hold one character outside the BMP (4 bytes of UTF-16).
MIN_PART_BYTES = 4

_Result = TypeVar("_Result")

# keyring's fail backend raises NoKeyringError on every call. It is typed here because
# keyring leaves its constructor unannotated.
_new_fail_keyring: Callable[[], KeyringBackend] = fail.Keyring


class SecretStoreError(Exception):
    """A secret could not be read, saved or deleted."""


class SecretsLocked(SecretStoreError):
    """The keyring is locked, its unlock prompt was dismissed, or it failed to respond.

    A saved secret may still exist, so the caller must not treat this as "no token"
    and start a new sign-in that would replace it.
    """


class InsecureKeyringError(SecretStoreError):
    """The active keyring backend is not a recommended secure store and was not allowed.

    ``backend`` describes the backend, and ``reason`` is why it is not secure.
    """

    def __init__(self, message: str, *, backend: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.reason = reason


class SecretCorrupted(SecretStoreError):
    """The saved parts of a secret are missing or do not match their header."""


class _KeyringUnavailable(Exception):
    """Internal: the backend raised NoKeyringError, so the store switched to memory."""


@dataclass(frozen=True)
class _Generation:
    """One set of parts: its random id and the number of parts written under it."""

    generation_id: str
    part_count: int


@dataclass(frozen=True)
class _Header:
    """The header entry: the readable generation, its SHA-256, and a save in progress."""

    current: _Generation | None
    sha256: str | None
    pending: _Generation | None

    def to_text(self) -> str:
        document: dict[str, Any] = {"format": HEADER_FORMAT}
        if self.current is not None:
            document["generation"] = self.current.generation_id
            document["parts"] = self.current.part_count
            document["sha256"] = self.sha256
        if self.pending is not None:
            document["pending"] = {
                "generation": self.pending.generation_id,
                "parts": self.pending.part_count,
            }
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> _Header:
        """Parse a header entry, raising ValueError (without the text) for any other value."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("the header entry is not JSON") from None
        if not isinstance(document, dict) or document.get("format") != HEADER_FORMAT:
            raise ValueError(f"the header entry is not format {HEADER_FORMAT}")

        current = None
        sha256 = None
        if "generation" in document:
            current = _parse_generation(document.get("generation"), document.get("parts"))
            sha256 = document.get("sha256")
            if not isinstance(sha256, str):
                raise ValueError("the header entry has no SHA-256")
        pending = None
        if isinstance(document.get("pending"), dict):
            pending_document = document["pending"]
            pending = _parse_generation(pending_document.get("generation"), pending_document.get("parts"))
        return cls(current=current, sha256=sha256, pending=pending)


def _parse_generation(generation_id: object, part_count: object) -> _Generation:
    if not isinstance(generation_id, str) or not generation_id:
        raise ValueError("the header entry has an invalid generation id")
    if not isinstance(part_count, int) or part_count < 1:
        raise ValueError("the header entry has an invalid part count")
    return _Generation(generation_id, part_count)


def _utf16_size(character: str) -> int:
    """Return the size of one code point in bytes of UTF-16, the unit Windows counts blobs in."""
    return 2 if ord(character) < 0x10000 else 4


def split_secret(secret: str, max_part_bytes: int) -> list[str]:
    """Split ``secret`` into parts of at most ``max_part_bytes`` bytes of UTF-16 each.

    Parts break between code points, so a character outside the BMP is never cut in two.
    """
    parts: list[str] = []
    current: list[str] = []
    current_bytes = 0
    for character in secret:
        size = _utf16_size(character)
        if current_bytes + size > max_part_bytes:
            parts.append("".join(current))
            current = []
            current_bytes = 0
        current.append(character)
        current_bytes += size
    parts.append("".join(current))
    return parts


def _sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _part_username(alias: str, generation: _Generation, index: int) -> str:
    # NOTE: an alias spelled exactly like another alias's part name ("a#part-<id>-0") would
    # collide with that part. The generation id is 64 random bits, so this needs a guess.
    return f"{alias}#part-{generation.generation_id}-{index}"


class SecretStore:
    """Secrets of org profiles, one per alias, in the OS keyring or in memory.

    Keep one instance per process: the in-memory fallback lives in the instance.
    """

    def __init__(
        self,
        service: str = DEFAULT_SERVICE,
        *,
        allow_insecure: bool = False,
        backend: KeyringBackend | None = None,
        max_part_bytes: int = WINDOWS_MAX_CREDENTIAL_BLOB_BYTES,
        memory_reason: str = "",
    ) -> None:
        """Pick the keyring backend, raising InsecureKeyringError for one that is not secure.

        ``backend`` defaults to the one keyring selects for this machine. ``max_part_bytes``
        is the largest part in bytes of UTF-16, whatever the backend. ``memory_reason``,
        when given, is the reason logged and shown if the store keeps secrets in memory.
        """
        if not service:
            raise ValueError("service must be a non-empty name")
        if max_part_bytes < MIN_PART_BYTES:
            raise ValueError(f"max_part_bytes must be at least {MIN_PART_BYTES}, got {max_part_bytes}")

        self.service = service
        self.max_part_bytes = max_part_bytes
        self._memory: dict[str, str] = {}
        self._backend: KeyringBackend | None = None
        self._unusable_reason = ""
        self._insecure_reason = ""

        chosen, description, problem = _choose_backend(backend)
        self._description = description
        if problem is None:
            self._backend = chosen
        elif problem.insecure and allow_insecure:
            log.warning("Using keyring backend %s because insecure backends are allowed", description)
            self._backend = chosen
            self._insecure_reason = problem.reason
        elif problem.insecure:
            raise InsecureKeyringError(
                f"The keyring backend {description} is not a secure store ({problem.reason}). "
                "Set up the system keyring (Keychain, Credential Manager, GNOME Keyring or KWallet), "
                "or allow this backend on the Connect page (\"Use this keyring anyway…\") or with "
                "allow_insecure_keyring = true in app.toml.",
                backend=description,
                reason=problem.reason,
            )
        else:
            self._switch_to_memory(memory_reason or problem.reason)

        if self._backend is not None:
            log.info("Secrets are stored in keyring backend %s", description)

    @classmethod
    def in_memory(cls, service: str = DEFAULT_SERVICE, *, reason: str = "") -> SecretStore:
        """Create a store that keeps secrets in memory only, for example after InsecureKeyringError.

        ``reason`` replaces the default explanation in ``storage_notice``.
        """
        return cls(service, backend=_new_fail_keyring(), memory_reason=reason)

    @property
    def persistent(self) -> bool:
        """Whether saved secrets outlive this process."""
        return self._backend is not None

    @property
    def storage_notice(self) -> str:
        """One sentence for the UI saying where secrets are kept."""
        if self._backend is not None and self._insecure_reason:
            return (
                f"Sign-in tokens are saved in {self._description}, which is not a secure store "
                f"({self._insecure_reason})."
            )
        if self._backend is not None:
            return f"Sign-in tokens are saved in the system keyring ({self._description})."
        return (
            f"No usable system keyring was found ({self._unusable_reason}), so sign-in tokens are kept "
            "in memory and you will need to sign in again after restarting the app."
        )

    def backend_description(self) -> str:
        """Return the active backend's name and priority, for a diagnostics page."""
        if self._backend is None:
            return f"in memory only, because {self._description} is not usable: {self._unusable_reason}"
        return self._description

    def save(self, alias: str, secret: str) -> None:
        """Save ``secret`` for ``alias``, replacing any earlier one.

        Raises SecretsLocked when the keyring is locked and SecretStoreError when a write fails.
        In both cases the earlier secret, if any, stays readable.
        """
        _check_alias(alias)
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"the secret for {alias!r} must be a non-empty string")

        if self._backend is not None:
            try:
                self._save_to_keyring(self._backend, alias, secret)
                return
            except _KeyringUnavailable:
                pass
        self._memory[alias] = secret

    def load(self, alias: str) -> str | None:
        """Return the secret saved for ``alias``, or None when none was saved.

        Raises SecretsLocked when the keyring cannot be read right now, and SecretCorrupted when
        the saved parts are incomplete. Neither means "no token".
        """
        _check_alias(alias)
        if self._backend is not None:
            try:
                return self._load_from_keyring(self._backend, alias)
            except _KeyringUnavailable:
                pass
        return self._memory.get(alias)

    def delete(self, alias: str) -> None:
        """Delete the secret of ``alias`` with all its parts. Deleting a missing secret does nothing."""
        _check_alias(alias)
        self._memory.pop(alias, None)
        if self._backend is not None:
            with contextlib.suppress(_KeyringUnavailable):
                self._delete_from_keyring(self._backend, alias)

    # Keyring steps. Each backend call goes through _call so that failures map to our errors.

    def _save_to_keyring(self, backend: KeyringBackend, alias: str, secret: str) -> None:
        old = self._read_header_for_write(backend, alias)
        if old is not None and old.pending is not None:
            self._delete_parts(backend, alias, old.pending)

        parts = split_secret(secret, self.max_part_bytes)
        new = _Generation(uuid.uuid4().hex[:GENERATION_ID_LENGTH], len(parts))
        old_current = old.current if old is not None else None
        old_sha256 = old.sha256 if old is not None else None

        # Record the new generation as pending first, so that parts left by a crash are
        # found and deleted by the next save or delete.
        self._write_header(backend, alias, _Header(old_current, old_sha256, pending=new))
        for index, part in enumerate(parts):
            username = _part_username(alias, new, index)
            self._call("save", alias, partial(backend.set_password, self.service, username, part))
        self._write_header(backend, alias, _Header(new, _sha256_hex(secret), pending=None))
        log.info("Saved the secret of %s in %d part(s)", alias, len(parts))

        if old_current is not None:
            try:
                self._delete_parts(backend, alias, old_current)
            except SecretStoreError as error:
                log.warning("Could not delete the replaced parts of %s: %s", alias, error)

    def _load_from_keyring(self, backend: KeyringBackend, alias: str) -> str | None:
        header_text = self._call("load", alias, partial(backend.get_password, self.service, alias))
        if header_text is None:
            return None
        header = self._parse_header(alias, header_text)
        if header.current is None:
            # Only a save that never finished has been recorded.
            return None

        parts = []
        for index in range(header.current.part_count):
            username = _part_username(alias, header.current, index)
            part = self._call("load", alias, partial(backend.get_password, self.service, username))
            if part is None:
                raise SecretCorrupted(
                    f"Part {index + 1} of {header.current.part_count} of the saved secret of {alias!r} "
                    f"is missing from {self._description}. Sign in again to replace it."
                )
            parts.append(part)

        secret = "".join(parts)
        if _sha256_hex(secret) != header.sha256:
            raise SecretCorrupted(
                f"The saved secret of {alias!r} in {self._description} does not match its checksum. "
                "Sign in again to replace it."
            )
        return secret

    def _delete_from_keyring(self, backend: KeyringBackend, alias: str) -> None:
        header = self._read_header_for_write(backend, alias)
        if header is not None:
            for generation in (header.current, header.pending):
                if generation is not None:
                    self._delete_parts(backend, alias, generation)
        # The header goes last: if a part cannot be deleted, a later delete still finds it.
        self._delete_entry(backend, alias, alias)
        if self._call("delete", alias, partial(backend.get_password, self.service, alias)) is not None:
            raise SecretStoreError(
                f"Could not delete the secret of {alias!r} from {self._description}: it is still there. "
                "Unlock the keyring and try again, or remove the entry in the keyring's own app."
            )
        log.info("Deleted the secret of %s", alias)

    def _read_header_for_write(self, backend: KeyringBackend, alias: str) -> _Header | None:
        header_text = self._call("save", alias, partial(backend.get_password, self.service, alias))
        if header_text is None:
            return None
        try:
            return _Header.from_text(header_text)
        except ValueError as error:
            # Parts of an unreadable header cannot be found, so they stay in the keyring unused.
            log.warning("Replacing the unreadable secret header of %s: %s", alias, error)
            return None

    def _parse_header(self, alias: str, header_text: str) -> _Header:
        try:
            return _Header.from_text(header_text)
        except ValueError as error:
            raise SecretCorrupted(
                f"The saved secret of {alias!r} in {self._description} is unreadable ({error}). "
                "Sign in again to replace it."
            ) from None

    def _write_header(self, backend: KeyringBackend, alias: str, header: _Header) -> None:
        self._call("save", alias, partial(backend.set_password, self.service, alias, header.to_text()))

    def _delete_parts(self, backend: KeyringBackend, alias: str, generation: _Generation) -> None:
        for index in range(generation.part_count):
            self._delete_entry(backend, alias, _part_username(alias, generation, index))

    def _delete_entry(self, backend: KeyringBackend, alias: str, username: str) -> None:
        def delete_if_present() -> None:
            # PasswordDeleteError means the entry does not exist. macOS also raises it for
            # other failures, so _delete_from_keyring checks that the header is gone.
            with contextlib.suppress(PasswordDeleteError):
                backend.delete_password(self.service, username)

        self._call("delete", alias, delete_if_present)

    def _call(self, action: str, alias: str, operation: Callable[[], _Result]) -> _Result:
        """Run one backend call and turn its failures into SecretStoreError subclasses.

        The backend errors of keyring 25.7 name the failing call but not the secret, so their
        text is kept in the message.
        """
        try:
            return operation()
        except NoKeyringError as error:
            self._switch_to_memory(str(error))
            raise _KeyringUnavailable from error
        # In keyring 25.7, Secret Service raises KeyringLocked for a dismissed unlock prompt and
        # InitError when its collection cannot be opened. macOS raises KeyringLocked for a denied
        # keychain (backends/SecretService.py and backends/macOS/__init__.py).
        except (KeyringLocked, InitError) as error:
            raise SecretsLocked(self._locked_message(action, alias, error)) from error
        except KeyringError as error:
            if action == "load":
                raise SecretsLocked(self._locked_message(action, alias, error)) from error
            raise SecretStoreError(
                f"Could not {action} the secret of {alias!r} in {self._description}: {error}. "
                "If a keyring unlock prompt was dismissed, unlock the keyring and try again."
            ) from error
        # Backends also let their own errors through (D-Bus errors, Windows OSError 1783), and
        # none of them may look like "no token".
        except Exception as error:
            raise SecretStoreError(
                f"Could not {action} the secret of {alias!r} in {self._description}: "
                f"{type(error).__name__}: {error}"
            ) from error

    def _locked_message(self, action: str, alias: str, error: Exception) -> str:
        return (
            f"Could not {action} the secret of {alias!r} because the keyring {self._description} is locked "
            f"or did not respond ({error}). Unlock the keyring and try again. No new sign-in is needed."
        )

    def _switch_to_memory(self, reason: str) -> None:
        if self._backend is not None:
            log.warning(
                "Keyring backend %s stopped working (%s), so secrets are kept in memory",
                self._description,
                reason,
            )
        else:
            log.warning("No usable keyring backend (%s), so secrets are kept in memory", reason)
        self._backend = None
        self._unusable_reason = reason


@dataclass(frozen=True)
class _BackendProblem:
    reason: str
    insecure: bool


def _choose_backend(
    requested: KeyringBackend | None,
) -> tuple[KeyringBackend, str, _BackendProblem | None]:
    """Return the backend to use, its description, and why it must not be used as is."""
    if requested is None:
        try:
            requested = keyring.get_keyring()
        except Exception as error:
            # A broken keyringrc.cfg or backend import surfaces here.
            requested = _new_fail_keyring()
            problem = _BackendProblem(f"keyring failed to start: {error}", False)
            return requested, _describe(requested), problem

    chosen = requested
    if isinstance(requested, ChainerBackend):
        # The chainer writes to the first of its backends, sorted by priority, that accepts
        # the write (keyring 25.7, backends/chainer.py). Use that one directly so the checks
        # below judge the store that receives the secret.
        members = list(requested.backends)
        if not members:
            return requested, _describe(requested), _BackendProblem("the keyring chain is empty", False)
        chosen = members[0]

    return chosen, _describe(chosen), _problem_with(chosen)


def _problem_with(backend: KeyringBackend) -> _BackendProblem | None:
    if isinstance(backend, fail.Keyring):
        return _BackendProblem("keyring found no recommended backend on this system", False)
    if isinstance(backend, null.Keyring):
        return _BackendProblem("the null backend discards every secret", False)
    try:
        priority = float(type(backend).priority)
    except RuntimeError as error:
        # A backend's priority raises RuntimeError when it cannot work in this environment.
        return _BackendProblem(f"the backend cannot run here: {error}", False)

    if type(backend).__module__.startswith("keyrings.alt"):
        # The keyrings.alt description warns that its backends "may have security risks" and
        # discourages them for production use. Its PlaintextKeyring writes secrets to a file as is.
        return _BackendProblem("keyrings.alt backends store secrets in files", True)
    if priority < MIN_RECOMMENDED_PRIORITY:
        return _BackendProblem(
            f"its priority {priority:g} is below {MIN_RECOMMENDED_PRIORITY:g}, keyring's threshold for a "
            "recommended backend",
            True,
        )
    return None


def _describe(backend: KeyringBackend) -> str:
    backend_class = type(backend)
    try:
        priority = f"{float(backend_class.priority):g}"
    except RuntimeError:
        priority = "not available"
    return f"{backend_class.name} (priority {priority})"


def _check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not alias:
        raise ValueError(f"alias must be a non-empty string, got {alias!r}")
