"""Refusals of the review workspace; each message is shown to the reviewer as it is."""

from __future__ import annotations

from generation.errors import DomainError
from generation.models import ArtefactVersion


class ReviewError(DomainError):
    """A review action that cannot be carried out; the message is shown to the reviewer."""


class StaleReview(ReviewError):
    """The reviewer decided on versions that are no longer the current ones."""


class EditConflict(ReviewError):
    """Someone saved a newer version first; the reviewer's text was kept as a draft."""

    def __init__(self, *, draft: ArtefactVersion, current: ArtefactVersion, names_author: bool = True) -> None:
        self.draft, self.current = draft, current
        super().__init__(self._message(names_author))

    def _message(self, names_author: bool) -> str:
        # Blind review: a reviewer who has not decided yet is not told who else edited.
        author = self.current.author
        shown = "the pipeline" if author is None else (str(author) if names_author else "Another reviewer")
        return (
            f"{shown} saved version {self.current.number} while you were editing, so your change was not applied. "
            f"Your text is still in the form and was kept as draft version {self.draft.number}."
        )


class RegenerationLimitReached(ReviewError):
    """The reviewer has sent as many items back for regeneration as the hour allows."""
