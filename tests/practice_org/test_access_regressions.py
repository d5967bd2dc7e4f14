"""Access gaps found by attacking the practice org through its real HTTPS API.

In the default scenario the outreach user (Standard User) reaches only the Tasks it owns,
so no Bulk API 2.0 path may hand it another user's Task or write one for it. The other
cases cover a Modify All Data user without the View All Data flag, and OAuth tokens kept
in a database made before token families.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import API_VERSION, Login, https_session, login

OUTREACH = "outreach@practice.backstory.example"


@pytest.fixture(scope="module")
def outreach(default_org: PracticeOrg) -> Login:
    return login(default_org, OUTREACH)


def create_query_job(client: Login, soql: str) -> dict[str, Any]:
    response = client.http.post(client.url("jobs/query"), headers=client.headers(),
                                json={"operation": "query", "query": soql})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bulk_query__results_hidden_from_other_user(admin: Login, outreach: Login) -> None:
    job = create_query_job(admin, "SELECT Id, Subject FROM Task")
    task_ids = {row["Id"] for row in admin.sf.query_all("SELECT Id FROM Task")["records"]}

    response = outreach.http.get(outreach.url(f"jobs/query/{job['id']}/results"),
                                 headers=outreach.headers())

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert not any(task_id in response.text for task_id in task_ids)


def test_bulk_query__creator_still_reads_results(admin: Login) -> None:
    job = create_query_job(admin, "SELECT Id FROM Task")

    response = admin.http.get(admin.url(f"jobs/query/{job['id']}/results"),
                              headers=admin.headers())

    assert response.status_code == 200
    assert response.text.startswith('"Id"')


def test_bulk_query__other_user_cannot_abort_job(admin: Login, outreach: Login) -> None:
    job = create_query_job(admin, "SELECT Id FROM Task")

    response = outreach.http.patch(outreach.url(f"jobs/query/{job['id']}"),
                                   headers=outreach.headers(), json={"state": "Aborted"})
    info = admin.http.get(admin.url(f"jobs/query/{job['id']}"), headers=admin.headers())

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert info.json()["state"] == "JobComplete"


def test_bulk_query__modify_all_data_aborts_any_job(admin: Login, outreach: Login) -> None:
    job = create_query_job(outreach, "SELECT Id FROM Task")

    response = admin.http.patch(admin.url(f"jobs/query/{job['id']}"),
                                headers=admin.headers(), json={"state": "Aborted"})

    assert response.status_code == 200
    assert response.json()["state"] == "Aborted"



def closed_update_job(client: Login, task_id: str, subject: str) -> str:
    """Create a Bulk 2.0 update job for one Task, upload its row and close it."""
    job = client.http.post(client.url("jobs/ingest"), headers=client.headers(),
                           json={"object": "Task", "operation": "update", "lineEnding": "LF"})
    assert job.status_code == 200, job.text
    job_id = str(job.json()["id"])
    upload = client.http.put(client.url(f"jobs/ingest/{job_id}/batches"),
                             headers={**client.headers(), "Content-Type": "text/csv"},
                             data=f"Id,Subject\n{task_id},{subject}\n")
    assert upload.status_code == 201, upload.text
    closed = client.http.patch(client.url(f"jobs/ingest/{job_id}"), headers=client.headers(),
                               json={"state": "UploadComplete"})
    assert closed.status_code == 200, closed.text
    return job_id


def hidden_task(admin: Login, outreach: Login) -> dict[str, Any]:
    """Return a live Task that the outreach user can neither read nor edit."""
    outreach_id = outreach.sf.query(
        f"SELECT Id FROM User WHERE Username = '{OUTREACH}'")["records"][0]["Id"]
    return dict(admin.sf.query(f"SELECT Id, Subject, LastModifiedById FROM Task "
                               f"WHERE OwnerId != '{outreach_id}' LIMIT 1")["records"][0])


def test_bulk_ingest__rows_run_as_creator_not_poller(admin: Login, outreach: Login) -> None:
    task = hidden_task(admin, outreach)
    job_id = closed_update_job(outreach, task["Id"], "Changed by outreach")

    info = admin.http.get(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers()).json()
    failed = admin.http.get(admin.url(f"jobs/ingest/{job_id}/failedResults"),
                            headers=admin.headers()).text
    after = admin.sf.Task.get(task["Id"])

    assert info["numberRecordsFailed"] == 1
    assert "INSUFFICIENT_ACCESS_OR_READONLY" in failed
    assert after["Subject"] == task["Subject"]
    assert after["LastModifiedById"] == task["LastModifiedById"]


def test_bulk_ingest__poller_does_not_limit_creator(admin: Login, outreach: Login) -> None:
    task = hidden_task(admin, outreach)
    job_id = closed_update_job(admin, task["Id"], "Changed by admin")

    info = outreach.http.get(outreach.url(f"jobs/ingest/{job_id}"),
                             headers=outreach.headers()).json()

    assert info["numberRecordsFailed"] == 0
    assert admin.sf.Task.get(task["Id"])["Subject"] == "Changed by admin"



# -- Modify All Data without the View All Data flag -----------------------------------


def test_modify_all_data__upserts_by_non_unique_key(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db", scenario="non-unique") as org:
        admin = login(org, org.admin_username)
        outreach_id = admin.sf.query(
            f"SELECT Id FROM User WHERE Username = '{OUTREACH}'")["records"][0]["Id"]
        modify_all = admin.sf.PermissionSet.create({
            "Name": "Modify_All_Only", "Label": "Modify All Only",
            "PermissionsModifyAllData": True})["id"]
        admin.sf.PermissionSetAssignment.create({"PermissionSetId": modify_all,
                                                 "AssigneeId": outreach_id})
        outreach = login(org, OUTREACH)

        status = outreach.sf.Task.upsert("Message_ID__c/<modify-all@practice.example>",
                                         {"Subject": "Email: upsert by Modify All Data"})

    assert status == 201


# -- OAuth tokens kept from a database made before token families --------------------


def drop_token_families(db_path: Path) -> None:
    """Make the oauth_tokens table look as it did before token families existed."""
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("ALTER TABLE oauth_tokens DROP COLUMN family")
        connection.commit()


def token_works(org: PracticeOrg, access_token: str) -> bool:
    http = https_session(org)
    response = http.get(f"{org.base_url}/services/data/v{API_VERSION}/sobjects",
                        headers={"Authorization": f"Bearer {access_token}"})
    return response.status_code == 200


def test_token_family__old_refresh_revoke_spares_others(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    with PracticeOrg(db_path, scenario="default") as org:
        admin = login(org, org.admin_username)
        integration = login(org, org.integration_username)
    drop_token_families(db_path)

    with PracticeOrg(db_path, scenario="default") as org:
        assert token_works(org, integration.access_token)
        revoked = https_session(org).post(f"{org.base_url}/services/oauth2/revoke",
                                          data={"token": admin.refresh_token})

        assert revoked.status_code == 200
        assert token_works(org, integration.access_token)


def test_token_family__old_refresh_rotation_starts_family(tmp_path: Path) -> None:
    db_path = tmp_path / "practice.db"
    with PracticeOrg(db_path, scenario="default") as org:
        admin = login(org, org.admin_username)
        integration = login(org, org.integration_username)
    drop_token_families(db_path)

    with PracticeOrg(db_path, scenario="default") as org:
        http = https_session(org)
        assert token_works(org, integration.access_token)
        refreshed = http.post(f"{org.base_url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": admin.refresh_token,
            "client_id": org.client_id,
        })
        assert refreshed.status_code == 200, refreshed.text
        new_refresh_token = refreshed.json()["refresh_token"]
        new_access_token = refreshed.json()["access_token"]

        revoked = http.post(f"{org.base_url}/services/oauth2/revoke",
                            data={"token": new_refresh_token})

        assert revoked.status_code == 200
        assert not token_works(org, new_access_token)
        assert token_works(org, integration.access_token)
