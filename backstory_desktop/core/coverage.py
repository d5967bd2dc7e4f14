"""Message-ID coverage of a cadence tool's Tasks: each stored key's form, and counts per tool.

Backstory upserts Tasks on the canonical key ``<local@domain>`` (see
core.message_id). A value that a cadence tool stores in another form, without
its angle brackets above all, is a different value to Salesforce, so the
upsert does not find that Task and the e-mail is logged twice. Pure
functions, free of Qt and I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from backstory_desktop.core.message_id import canonical_message_id

# Raw values kept per key form and tool: enough to show each kind of problem the tool writes,
# without a report of every Task.
EXAMPLES_PER_FORM = 2


class KeyForm(StrEnum):
    """The form of one stored Message-ID value, compared with its canonical key."""

    MISSING = "missing"  # no value at all
    CANONICAL = "canonical"  # exactly the canonical key
    WITHOUT_BRACKETS = "without_brackets"  # the canonical key once angle brackets are added
    NOT_CANONICAL = "not_canonical"  # differs from the canonical key in more than the brackets
    UNUSABLE = "unusable"  # yields no key at all (see canonical_message_id)


@dataclass(frozen=True)
class KeyExample:
    """One stored value that is not canonical, with the Task it is on and the reason."""

    task_id: str
    value: str
    form: KeyForm
    reason: str


def classify_key(value: str | None, *, case_sensitive: bool = True) -> tuple[KeyForm, str]:
    """Return the form of a stored value and a reason an admin can read.

    With ``case_sensitive`` False, as for a field that is not case-sensitive,
    a value that differs from its canonical key only in case counts as canonical.
    """
    if value is None or value == "":
        return KeyForm.MISSING, "no Message-ID value"
    parsed = canonical_message_id(value)
    if parsed.key is None:
        return KeyForm.UNUSABLE, parsed.problem or "no key can be made from the value"
    if _same(value, parsed.key, case_sensitive):
        return KeyForm.CANONICAL, "canonical"
    if _same(f"<{value}>", parsed.key, case_sensitive):
        return KeyForm.WITHOUT_BRACKETS, f"stored without angle brackets; the key is {parsed.key}"
    return KeyForm.NOT_CANONICAL, f"differs from its canonical key {parsed.key}"


def _same(value: str, key: str, case_sensitive: bool) -> bool:
    return value == key if case_sensitive else value.casefold() == key.casefold()


@dataclass
class KeyCounts:
    """Counts of the key forms over a set of Tasks, with a few examples of each kind of problem.

    The forms do not overlap: ``not_canonical`` leaves out the values whose only
    difference is the missing angle brackets, which ``without_brackets`` counts.
    """

    tasks: int = 0
    with_key: int = 0
    without_brackets: int = 0
    not_canonical: int = 0
    unusable: int = 0
    examples: list[KeyExample] = field(default_factory=list)

    @property
    def without_key(self) -> int:
        """Tasks whose Message-ID field is empty."""
        return self.tasks - self.with_key

    @property
    def canonical(self) -> int:
        """Tasks whose key is exactly the canonical key."""
        return self.with_key - self.without_brackets - self.not_canonical - self.unusable

    @property
    def problems(self) -> int:
        """Tasks that Backstory's upsert cannot match: no key, or a key not in canonical form."""
        return self.tasks - self.canonical

    def add(self, task_id: str, value: str | None, *, case_sensitive: bool = True) -> KeyForm:
        """Count one Task's stored value and keep it as an example when it is a problem."""
        form, reason = classify_key(value, case_sensitive=case_sensitive)
        self.tasks += 1
        if form is KeyForm.MISSING:
            return form
        self.with_key += 1
        if form is KeyForm.WITHOUT_BRACKETS:
            self.without_brackets += 1
        elif form is KeyForm.NOT_CANONICAL:
            self.not_canonical += 1
        elif form is KeyForm.UNUSABLE:
            self.unusable += 1
        kept = sum(1 for example in self.examples if example.form is form)
        if form is not KeyForm.CANONICAL and kept < EXAMPLES_PER_FORM:
            self.examples.append(KeyExample(task_id, str(value), form, reason))
        return form


def percent(part: int, whole: int) -> int:
    """Return ``part`` as a whole percentage of ``whole``, 0 when ``whole`` is 0."""
    return round(100 * part / whole) if whole else 0
