"""What the seeding script, the locustfile and the driver agree on: account names, the
queue the reviewers work through, the names of the measured actions, and the variables
through which the driver hands the password and the outcome file to the other two."""

from __future__ import annotations

# The driver generates a fresh password per run; the seed sets it, the locustfile logs in with it.
PASSWORD_ENV = "LOADTEST_PASSWORD"  # noqa: S105 - the variable's name, not a password
# Where the locustfile writes how the races between reviewers ended (JSON), read by the driver.
OUTCOMES_ENV = "LOADTEST_OUTCOMES_FILE"
# Scales every think time (1 = a reviewer's pace; the smoke test runs faster).
THINK_SCALE_ENV = "LOADTEST_THINK_SCALE"

ADMIN_USERNAME = "loadtest-admin"
# Every simulated reviewer works through "Assigned to me", like a clinician an admin gave work to.
QUEUE = "mine"

# Request names, one per reviewer action: the rows of the figures table.
LOGIN_PAGE = "login page"
LOGIN = "log in"
OPEN_QUEUE = "open queue"
OPEN_ITEM = "open item"
EDIT_FORM = "open section editor"
SAVE_SECTION = "save section"
APPROVE = "approve"
SKIP = "skip"
ACTIONS = (LOGIN_PAGE, LOGIN, OPEN_QUEUE, OPEN_ITEM, EDIT_FORM, SAVE_SECTION, APPROVE, SKIP)
# What a reviewer does all day, once logged in (a login lasts SESSION_COOKIE_AGE, 12 h).
REVIEW_ACTIONS = (OPEN_QUEUE, OPEN_ITEM, EDIT_FORM, SAVE_SECTION, APPROVE, SKIP)

# How a race between two reviewers of one shared case ended; each is a valid outcome.
EDIT_CONFLICT = "edit conflict (newer version saved meanwhile)"
STALE_DECISION = "decision refused: a version changed since the item opened"
TAKEN = "case decided by the other reviewer meanwhile"
OUTCOMES = (EDIT_CONFLICT, STALE_DECISION, TAKEN)


def reviewer_username(index: int) -> str:
    return f"reviewer-{index:03d}"
