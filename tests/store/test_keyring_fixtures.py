"""Every test runs on an in-memory keyring, in its own process and in the processes it starts."""

from __future__ import annotations

import subprocess
import sys

import keyring

from backstory_desktop.store.secrets import SecretStore
from tests.memory_keyring import FailingKeyring, MemoryKeyring


def test_keyring_fixture__tests_use_the_memory_backend(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()

    store.save("acme-prod", "5Aep-test-token")

    assert keyring.get_keyring() is memory_keyring
    assert store.persistent
    assert "5Aep-test-token" in memory_keyring.values()


def test_keyring_fixture__each_test_gets_an_empty_backend(memory_keyring: MemoryKeyring) -> None:
    assert memory_keyring.entries == {}


def test_keyring_fixture__subprocesses_use_the_memory_backend() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import keyring; print(type(keyring.get_keyring()).__qualname__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == MemoryKeyring.__qualname__


def test_keyring_fixture__failing_backend_falls_back_to_memory(failing_keyring: FailingKeyring) -> None:
    store = SecretStore()

    store.save("acme-prod", "5Aep-test-token")

    assert keyring.get_keyring() is failing_keyring
    assert store.load("acme-prod") == "5Aep-test-token"
    assert not store.persistent
    assert "kept in memory" in store.storage_notice
