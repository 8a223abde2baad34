from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ImmutableRowError(RuntimeError):
    """Raised when code tries to change or delete a row that is history."""


class ImmutableModel(models.Model):
    """A row that is written once: edits are new rows, nothing is deleted."""

    class Meta:
        abstract = True

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableRowError(f"{type(self).__name__} rows are immutable; create a new row instead.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableRowError(f"{type(self).__name__} rows are history and are never deleted.")
