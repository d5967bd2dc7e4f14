"""The whole real mail corpus is planned against the practice org: each message keyed or reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.activity import MailActivity
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action, Plan
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.sources.registry import read_source
from backstory_desktop.store.settings import OrgProfile
from tests.sources.test_corpus import MBOX_FILES, single_messages


def _plan(admin: OrgConnection, path: Path) -> Plan:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    return enablement.plan_sync(run, path)


def _assert_every_message_planned(plan: Plan, path: Path) -> None:
    read = list(read_source(path))
    rows = list(plan.rows)

    assert [row.source_ref for row in rows] == [item.source_ref for item in read]
    assert [row.key for row in rows] == [
        item.message_id.key if isinstance(item, MailActivity) else None for item in read
    ]
    for row in rows:
        if row.action is Action.INVALID:
            assert row.reason, row.source_ref
        else:
            assert row.key is not None, row.source_ref
            assert row.key.startswith("<"), row.source_ref
            assert row.key.endswith(">"), row.source_ref
            assert not any(char.isspace() for char in row.key), row.source_ref


def test_plan_corpus__eml_folder(admin: OrgConnection, mail_corpus: Path) -> None:
    plan = _plan(admin, mail_corpus)

    _assert_every_message_planned(plan, mail_corpus)
    counts = plan.counts()
    assert counts["create"] + counts["update"] >= 200
    # The corpus's .msg files are reported, not read.
    assert counts["invalid"] >= len(single_messages(mail_corpus, ".msg"))


def test_plan_corpus__txt_messages_as_a_maildir(admin: OrgConnection, mail_corpus: Path,
                                                tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for name in ("cur", "new", "tmp"):
        (maildir / name).mkdir(parents=True)
    for number, path in enumerate(single_messages(mail_corpus, ".txt")):
        shutil.copyfile(path, maildir / "cur" / f"{1700000000 + number}.M{number}P1.corpus:2,S")

    plan = _plan(admin, maildir)

    _assert_every_message_planned(plan, maildir)
    nested = [row for row in plan.rows if "nests too deeply" in row.reason]
    assert len(nested) == 1
    assert nested[0].action is Action.INVALID


@pytest.mark.parametrize("relative", sorted(MBOX_FILES))
def test_plan_corpus__mbox_files(admin: OrgConnection, mail_corpus: Path, relative: str) -> None:
    path = mail_corpus / relative

    plan = _plan(admin, path)

    _assert_every_message_planned(plan, path)
    assert len(plan.rows) == MBOX_FILES[relative]
