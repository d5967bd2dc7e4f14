"""The organization Id of a practice org database: drawn when it is seeded, kept in its file, and
reported by the identity service, UserInfo and SOAP login()."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.ids import UNRECORDED_ORG_ID, to_id18
from backstory_desktop.salesforce.connection import connect_practice_org
from tests.practice_org.practice_login import (
    API_VERSION,
    REDIRECT_URI,
    authorize,
    https_session,
    login,
    pkce_pair,
)
from tests.practice_org.soap_requests import PARTNER, full_password, login_result, post_login


def seeded_org_id(db_path: Path) -> str:
    """Open (and seed, if new) the database at db_path, and return its organization Id."""
    org = PracticeOrg(db_path, scenario="empty")
    try:
        return org.org_id
    finally:
        org.stop()


def forget_stored_org_id(db_path: Path) -> None:
    """Make the file look like one seeded before databases stored their organization Id."""
    with sqlite3.connect(db_path) as connection:
        connection.execute("DELETE FROM meta WHERE key = 'org_id'")
    connection.close()


def test_org_id__is_valid_18_character_id(tmp_path: Path) -> None:
    org_id = seeded_org_id(tmp_path / "practice.db")

    assert org_id.startswith("00D")
    assert to_id18(org_id[:15]) == org_id
    assert org_id != UNRECORDED_ORG_ID


def test_org_id__differs_between_databases(tmp_path: Path) -> None:
    first = seeded_org_id(tmp_path / "first.db")
    second = seeded_org_id(tmp_path / "second.db")

    assert first != second
    assert first[:15].lower() != second[:15].lower()


def test_org_id__kept_on_reopen(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    drawn = seeded_org_id(db_path)

    assert seeded_org_id(db_path) == drawn


def test_org_id__database_without_one_keeps_old_id(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    seeded_org_id(db_path)
    forget_stored_org_id(db_path)

    assert seeded_org_id(db_path) == "00D000000000001EAA"
    assert seeded_org_id(db_path) == "00D000000000001EAA"


def test_org_id__new_on_reseed(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    before = seeded_org_id(db_path)
    db_path.unlink()

    assert seeded_org_id(db_path) != before


def test_connection__old_database_keeps_old_id(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    seeded_org_id(db_path)
    forget_stored_org_id(db_path)

    with PracticeOrg(db_path, scenario="empty") as org:
        connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)

    assert connection.org_id == "00D000000000001EAA"


def test_connection__org_id_is_database_id(tmp_path: Path) -> None:
    org_ids: list[str] = []
    for name in ("first.db", "second.db"):
        with PracticeOrg(tmp_path / name, scenario="empty") as org:
            connection = connect_practice_org(
                org.base_url, org.ca_bundle, org.admin_username, org.client_id)
            assert connection.org_id == org.org_id
            org_ids.append(connection.org_id)

    assert org_ids[0] != org_ids[1]


@pytest.fixture(scope="module")
def identity_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    with PracticeOrg(tmp_path_factory.mktemp("identity") / "practice.db", scenario="empty") as org:
        yield org


def test_oauth__token_names_database_org(identity_org: PracticeOrg) -> None:
    http = https_session(identity_org)
    verifier, challenge = pkce_pair()
    code = authorize(identity_org, http, identity_org.admin_username, challenge)

    tokens = http.post(f"{identity_org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": identity_org.client_id, "redirect_uri": REDIRECT_URI}).json()

    assert tokens["access_token"].startswith(f"{identity_org.org_id[:15]}!")
    assert tokens["id"].startswith(f"{identity_org.base_url}/id/{identity_org.org_id}/005")


def test_identity__reports_database_org_id(identity_org: PracticeOrg) -> None:
    admin = login(identity_org, identity_org.admin_username)
    user_id = admin.sf.query(
        f"SELECT Id FROM User WHERE Username = '{identity_org.admin_username}'")["records"][0]["Id"]

    response = admin.http.get(f"{identity_org.base_url}/id/{identity_org.org_id}/{user_id}",
                              headers=admin.headers())

    assert response.status_code == 200, response.text
    assert response.json()["organization_id"] == identity_org.org_id
    assert response.json()["id"] == f"{identity_org.base_url}/id/{identity_org.org_id}/{user_id}"


def test_identity__other_org_id_is_403(identity_org: PracticeOrg) -> None:
    admin = login(identity_org, identity_org.admin_username)
    user_id = admin.sf.query(
        f"SELECT Id FROM User WHERE Username = '{identity_org.admin_username}'")["records"][0]["Id"]

    response = admin.http.get(f"{identity_org.base_url}/id/{UNRECORDED_ORG_ID}/{user_id}",
                              headers=admin.headers())

    assert response.status_code == 403
    assert response.text == "Bad_Id"


def test_userinfo__reports_database_org_id(identity_org: PracticeOrg) -> None:
    admin = login(identity_org, identity_org.admin_username)

    body = admin.http.get(f"{identity_org.base_url}/services/oauth2/userinfo",
                          headers=admin.headers()).json()

    assert body["organization_id"] == identity_org.org_id
    assert body["urls"]["partner"].endswith(f"/{identity_org.org_id[:15]}")


def test_soap_login__reports_database_org_id(identity_org: PracticeOrg) -> None:
    http = https_session(identity_org)
    username = identity_org.admin_username
    org_id = identity_org.org_id

    result = login_result(post_login(identity_org, http, username, full_password(identity_org, username)))

    assert result.findtext(f"{PARTNER}userInfo/{PARTNER}organizationId") == org_id
    assert result.findtext(f"{PARTNER}serverUrl") == (
        f"{identity_org.base_url}/services/Soap/u/{API_VERSION}/{org_id[:15]}")
    assert (result.findtext(f"{PARTNER}sessionId") or "").startswith(f"{org_id[:15]}!")
