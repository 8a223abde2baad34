"""Simulated clinicians working through their review queue, as the browser does it.

Each simulated user logs in with its own clinician account (reviewer-000, reviewer-001, ...),
opens "Assigned to me", opens the first item, and then, item after item: opens the editor of
one SOAP section (htmx), saves it with the version number the page showed, and approves the
pair (every fifth item is skipped instead); the decision's HX-Redirect opens the next item,
and now and then the reviewer looks at the queue again. Requests carry what htmx sends: the
HX-Request header, the CSRF token as X-CSRFToken, and the hidden fields of the forms.

Some cases are assigned to two reviewers (loadtest/seed.py), so races happen as they do in
real use: a save based on a version someone else replaced is refused with the newer text
(an edit conflict), a decision is refused when a version changed since the item opened, and
a case can be decided by the other reviewer while one looks at it. Each of those is a valid
answer of the app, not a failure: the reviewer reloads the item or goes back to the queue,
as a person would. They are counted in the outcome file, with the response times of the
review actions (everything but logging in), which the driver reads.

Run by loadtest/run.py (`make loadtest`); by hand:
    LOADTEST_PASSWORD=... locust -f loadtest/locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.exception import StopUser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.shared import (  # noqa: E402 - needs the project root on the path
    APPROVE,
    EDIT_CONFLICT,
    EDIT_FORM,
    LOGIN,
    LOGIN_PAGE,
    OPEN_ITEM,
    OPEN_QUEUE,
    OUTCOMES,
    OUTCOMES_ENV,
    PASSWORD_ENV,
    QUEUE,
    REVIEW_ACTIONS,
    SAVE_SECTION,
    SKIP,
    STALE_DECISION,
    TAKEN,
    THINK_SCALE_ENV,
    reviewer_username,
)

THINK_SCALE = float(os.environ.get(THINK_SCALE_ENV, "1"))
ITEM_LINK = re.compile(rf'href="(/review/case/\d+/)\?queue={QUEUE}"')
SECTION_EDITOR = re.compile(rf'hx-get="(/review/case/\d+/note/[a-z_]+/edit/)\?queue={QUEUE}"')
HIDDEN_NUMBER = re.compile(r'name="(seen_\w+|base_number|opened_at)" value="([\d.]*)"')
TEXTAREA = re.compile(r'<textarea name="text"[^>]*>(.*?)</textarea>', re.DOTALL)
DECISION_FORM = 'id="decision-form"'
# The refusal a decision gets when a version changed after the item opened.
STALE_MESSAGE = "Reload the item and look again before deciding."
ADDITIONS = (
    " Reviewed: wording checked against the dialogue.",
    " Clarified the timeline of the symptoms.",
    " Follow-up interval confirmed with the patient.",
)

_accounts = itertools.count()
outcomes: Counter[str] = Counter()
# Response times of the review actions alone in the steady state, for their percentiles
# without the logins.
review_times_ms: list[float] = []
# While reviewers are still arriving (each logs in as it starts), every request's time and
# failure by action: the driver reports the ramp-up apart from the steady state.
ramping_up = True
ramp_up: dict[str, dict[str, Any]] = {}


def answered(answer: Any) -> str:
    """The status, or the error when no answer came."""
    return f"status {answer.status_code}" if answer.status_code else f"no answer ({answer.error!r})"


def hidden_numbers(page: str) -> dict[str, str]:
    """The version numbers and the opening time a page's forms carry (hidden inputs)."""
    return dict(HIDDEN_NUMBER.findall(page))


class Reviewer(HttpUser):
    # Between two items: a glance at the next one before starting it.
    wait_time = between(0.5 * THINK_SCALE, 1.5 * THINK_SCALE)

    def on_start(self) -> None:
        account = next(_accounts)
        self.username = reviewer_username(account)
        # Every fifth item is skipped and every fifth approved without an edit; each reviewer
        # starts elsewhere in that cycle, so even a short run with three users sees every action.
        self.item_number = account % 5
        self.item_url = ""  # the item open in the reviewer's tab, "" for none
        self.item_page = ""
        self.seen: dict[str, str] = {}  # what the decision form posts: seen_* and opened_at
        # A new connection per request: gunicorn closes idle keep-alive connections after 2 s,
        # shorter than most think times, and a request sent on a connection at the moment it
        # closes is reset. A browser retries that transparently; requests would report it as
        # a failure of the app. On loopback a connection costs a fraction of a millisecond.
        self.client.headers["Connection"] = "close"
        self.log_in()

    def think(self, low: float, high: float) -> None:
        time.sleep(random.uniform(low, high) * THINK_SCALE)

    def csrf_token(self) -> str:
        return self.client.cookies.get("csrftoken") or ""

    def htmx_headers(self) -> dict[str, str]:
        """What htmx sends: its marker, and the CSRF token (from the body's hx-headers)."""
        return {"HX-Request": "true", "X-CSRFToken": self.csrf_token()}

    # --- the steps ------------------------------------------------------------------

    def log_in(self) -> None:
        self.client.get("/login/", name=LOGIN_PAGE)
        form = {
            "username": self.username,
            "password": os.environ[PASSWORD_ENV],
            "csrfmiddlewaretoken": self.csrf_token(),
            "next": "",
        }
        with self.client.post("/login/", data=form, name=LOGIN, allow_redirects=False, catch_response=True) as answer:
            if answer.status_code != 302:
                answer.failure(f"{self.username} could not log in ({answered(answer)})")
                raise StopUser

    def open_queue(self) -> None:
        """The queue page; the reviewer starts with its first item."""
        with self.client.get(f"/review/queue/{QUEUE}/", name=OPEN_QUEUE, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"queue answered {answered(answer)}")
                return
            first = ITEM_LINK.search(answer.text)
        self.item_url = f"{first.group(1)}?queue={QUEUE}" if first else ""
        if not first:
            self.think(5, 10)  # nothing assigned right now

    def open_item(self) -> bool:
        """A full page load of the item; False when it offers nothing to decide anymore."""
        with self.client.get(self.item_url, name=OPEN_ITEM, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"item answered {answered(answer)}")
                return False
            self.item_page = answer.text
        self.seen = {key: value for key, value in hidden_numbers(self.item_page).items() if key != "base_number"}
        if DECISION_FORM not in self.item_page:
            outcomes[TAKEN] += 1
            return False
        return True

    def edit_section(self) -> bool:
        """Open one section's editor, type a little, save with the version the page showed.
        False when the item left the review meanwhile."""
        editors = SECTION_EDITOR.findall(self.item_page)
        if not editors:
            return True
        path = f"{random.choice(editors)}?queue={QUEUE}"
        with self.client.get(
            f"{path}&opened_at={self.seen.get('opened_at', '')}",
            name=EDIT_FORM,
            headers=self.htmx_headers(),
            catch_response=True,
        ) as answer:
            editor, text = answer.text, TEXTAREA.search(answer.text)
            if answer.status_code != 200 or text is None:
                return self.refused(answer, f"section editor answered {answered(answer)}")
        self.think(2, 6)  # reading the section and typing
        form = {
            "base_number": hidden_numbers(editor)["base_number"],
            "text": html.unescape(text.group(1)).strip() + random.choice(ADDITIONS),
            "opened_at": self.seen.get("opened_at", ""),
        }
        return self.save_section(path, form)

    def save_section(self, path: str, form: dict[str, str]) -> bool:
        with self.client.post(
            path, data=form, name=SAVE_SECTION, headers=self.htmx_headers(), catch_response=True
        ) as answer:
            if answer.status_code == 409 or 'class="conflict"' in answer.text:
                # The other reviewer saved first: the app shows their text and keeps ours as a
                # draft. The reviewer reads the newer version (reloads the item) and goes on.
                outcomes[EDIT_CONFLICT] += 1
                answer.success()
            elif answer.status_code == 200 and 'name="seen_note"' in answer.text:
                # The new version number came out of band for the decision form.
                self.seen |= {
                    key: value for key, value in hidden_numbers(answer.text).items() if key.startswith("seen_")
                }
                return True
            else:
                return self.refused(answer, f"save answered {answered(answer)}")
        return self.open_item()

    def decide(self) -> None:
        """Approve (every fifth item: skip); the answer's HX-Redirect opens the next item."""
        skip = self.item_number % 5 == 0
        path = self.item_url.replace("/?queue=", "/decide/?queue=")
        form = {**self.seen, "action": "skip" if skip else "approve"}
        with self.client.post(
            path, data=form, name=SKIP if skip else APPROVE, headers=self.htmx_headers(), catch_response=True
        ) as answer:
            redirect = answer.headers.get("HX-Redirect", "")
            if answer.status_code == 200 and redirect:
                self.item_number += 1
                self.item_url = redirect if ITEM_LINK.match(f'href="{redirect}"') else ""
            elif STALE_MESSAGE in answer.text:
                outcomes[STALE_DECISION] += 1  # the other reviewer saved an edit: reload, decide again
                answer.success()
            else:
                self.refused(answer, f"decision answered {answered(answer)} without a redirect")

    def refused(self, answer: Any, failure: str) -> bool:
        """An edit or decision the app refused: right when the other reviewer decided the
        case meanwhile (the item then offers nothing to decide), a failure otherwise.
        Returns False: the reviewer leaves the item."""
        page = self.client.get(self.item_url, name=OPEN_ITEM)
        if page.status_code == 200 and DECISION_FORM not in page.text:
            outcomes[TAKEN] += 1
            answer.success()
        else:
            answer.failure(failure)
        self.item_url = ""
        return False

    # --- the loop -------------------------------------------------------------------

    @task
    def review_next_item(self) -> None:
        if not self.item_url or random.random() < 0.2:  # now and then, back to the queue
            self.open_queue()
            self.think(0.5, 2)
        if not self.item_url or not self.open_item():
            self.item_url = ""
            return
        self.think(3, 8)  # reading the pair
        if self.item_number % 5 != 3 and not self.edit_section():
            return
        self.think(1, 3)
        self.decide()


@events.spawning_complete.add_listener  # type: ignore[untyped-decorator]
def ramp_up_end(**_kwargs: Any) -> None:
    """Every reviewer is at work: from here on is the measured steady state (the driver runs
    Locust with --reset-stats, which clears Locust's own figures at the same moment)."""
    global ramping_up
    ramping_up = False
    review_times_ms.clear()


@events.request.add_listener  # type: ignore[untyped-decorator]
def request_record(*, name: str, response_time: float, exception: Any = None, **_kwargs: Any) -> None:
    if ramping_up:
        ramp_up.setdefault(name, {"times_ms": [], "failures": 0})
        ramp_up[name]["times_ms"].append(response_time)
        ramp_up[name]["failures"] += exception is not None
    elif name in REVIEW_ACTIONS:
        review_times_ms.append(response_time)


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def outcomes_write(**_kwargs: Any) -> None:
    path = os.environ.get(OUTCOMES_ENV)
    if path:
        record = {
            "outcomes": {name: outcomes[name] for name in OUTCOMES},
            "review_times_ms": review_times_ms,
            "ramp_up": ramp_up,
        }
        Path(path).write_text(json.dumps(record), encoding="utf-8")
