"""The enablement steps as plain functions, shared by the wizard, the CLI and the rehearsal.

Each step does its real work on the org through the Salesforce layer and
returns a StepResult that reports what it found or changed. Nothing here imports
Qt; the wizard runs these functions on its worker thread. One module per step;
this package exports the functions callers use.
"""

from backstory_desktop.enablement.access import (
    apply_access_fix,
    check_cadence_users,
    check_integration_user,
    plan_access_fix,
)
from backstory_desktop.enablement.cadence import check_coverage, record_cadence_tools
from backstory_desktop.enablement.conflicts import scan_conflicts
from backstory_desktop.enablement.connect import connect, use_connection
from backstory_desktop.enablement.field import (
    apply_field_fix,
    check_field,
    create_field,
    plan_field_fix,
    set_flag_field,
)
from backstory_desktop.enablement.run import EnablementRun
from backstory_desktop.enablement.setting import (
    BACKSTORY_SETTING_NAME,
    BACKSTORY_SETTING_PATH,
    record_backstory_setting,
)
from backstory_desktop.enablement.summary import open_work, summarise
from backstory_desktop.enablement.sync import (
    apply_sync,
    plan_sync,
    resume_sync,
    retry_backfill,
    sync_history,
    unfinished_sync,
)

__all__ = [
    "BACKSTORY_SETTING_NAME",
    "BACKSTORY_SETTING_PATH",
    "EnablementRun",
    "apply_access_fix",
    "apply_field_fix",
    "apply_sync",
    "check_cadence_users",
    "check_coverage",
    "check_field",
    "check_integration_user",
    "connect",
    "create_field",
    "open_work",
    "plan_access_fix",
    "plan_field_fix",
    "plan_sync",
    "record_backstory_setting",
    "record_cadence_tools",
    "resume_sync",
    "retry_backfill",
    "scan_conflicts",
    "set_flag_field",
    "summarise",
    "sync_history",
    "unfinished_sync",
    "use_connection",
]
