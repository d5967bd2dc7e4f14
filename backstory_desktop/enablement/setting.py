"""The Backstory setting step: the field name the admin enters in Backstory, confirmed and saved."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, record_result, require_field
from backstory_desktop.store.settings import ProfilesFileError, save_profile

log = logging.getLogger(__name__)


# The Backstory setting that names the key field, and its place in Backstory's menus.
BACKSTORY_SETTING_NAME = "Upsert Message Id field name"
BACKSTORY_SETTING_PATH = (
    "Backstory > Settings > Integrations > CRMs > Sync Settings > Email Sync Extra Settings"
)


def record_backstory_setting(
    run: EnablementRun,
    *,
    confirmed: bool,
    confirmed_by: str = "the admin",
    profiles_file: Path | None = None,
) -> StepResult:
    """Record the value the admin enters in Backstory, and save it in the org profile.

    ``profiles_file`` defaults to the profiles file in the config folder.
    """
    field_state = require_field(run)
    profile = run.profile
    confirmed_before = (
        profile.backstory_setting_confirmed and profile.backstory_setting_value == field_state.api_name
    )
    if not confirmed:
        profile.backstory_setting_confirmed_on = ""
    elif not (confirmed_before and profile.backstory_setting_confirmed_on):
        # A confirmation seen again on a later visit keeps the day it was first given.
        profile.backstory_setting_confirmed_on = datetime.now(UTC).date().isoformat()
    profile.backstory_setting_value = field_state.api_name
    profile.backstory_setting_confirmed = confirmed
    try:
        save_profile(run.profile, profiles_file)
    except (OSError, ProfilesFileError) as error:
        reason = f"The setting could not be saved in the org profile: {error}"
        return record_result(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.FAILED, reason))
    details = {
        "setting": BACKSTORY_SETTING_NAME,
        "value": field_state.api_name,
        "where": BACKSTORY_SETTING_PATH,
        "confirmed": confirmed,
        "confirmed_by": confirmed_by if confirmed else "",
        "confirmed_on": profile.backstory_setting_confirmed_on,
        "profile": run.profile.alias,
    }
    if not confirmed:
        reason = f"Enter {field_state.api_name} as '{BACKSTORY_SETTING_NAME}' in Backstory, then confirm."
        return record_result(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.FAILED, reason, details))
    reason = (
        f"'{BACKSTORY_SETTING_NAME}' is {field_state.api_name}, confirmed by {confirmed_by} "
        f"on {profile.backstory_setting_confirmed_on} and saved in the org profile '{run.profile.alias}'."
    )
    return record_result(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.PASSED, reason, details))
