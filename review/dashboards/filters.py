"""What every dashboard figure is filtered by: a batch, a date range and a model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone


@dataclass(frozen=True)
class DashboardFilters:
    batch_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive
    model: str = ""  # the model the batch ran on

    def as_query(self) -> dict[str, str]:
        values = {
            "batch": str(self.batch_id or ""),
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "model": self.model,
        }
        return {key: value for key, value in values.items() if value}

    def on_cases(self, *, through: str = "") -> Q:
        """The filter on cases (`through`: the path to the case), dates by when the case was planned."""
        query = self._on_batch(through=through)
        return query & self.in_dates(f"{through}created_at")

    def on_decisions(self, *, through: str = "") -> Q:
        """The filter on review decisions: their case's batch and model, dates by when the decision was made."""
        return self._on_batch(through=f"{through}case__") & self.in_dates(f"{through}created_at")

    def _on_batch(self, *, through: str) -> Q:
        query = Q()
        if self.batch_id:
            query &= Q(**{f"{through}batch_id": self.batch_id})
        if self.model:
            query &= Q(**{f"{through}batch__model": self.model})
        return query

    def in_dates(self, field: str) -> Q:
        """From the start of date_from to the end of date_to, in the site's time zone."""
        query = Q()
        if self.date_from:
            query &= Q(**{f"{field}__gte": _day_start(self.date_from)})
        if self.date_to:
            query &= Q(**{f"{field}__lt": _day_start(self.date_to + dt.timedelta(days=1))})
        return query


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class FilterError(ValueError):
    """A filter value that cannot be read; the message says which and why."""


def _date(raw: str, label: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as bad:
        raise FilterError(f"{label} {raw!r} is not a date (YYYY-MM-DD).") from bad


def filters_from_query(query: Any) -> DashboardFilters:
    """Filters from a GET query dict; FilterError names the value that cannot be read."""
    raw_batch = (query.get("batch") or "").strip()
    if raw_batch and not raw_batch.isdigit():
        raise FilterError(f"Batch {raw_batch!r} is not a batch number.")
    date_from = _date((query.get("from") or "").strip(), "From")
    date_to = _date((query.get("to") or "").strip(), "To")
    if date_from and date_to and date_from > date_to:
        raise FilterError("The date range ends before it starts.")
    return DashboardFilters(
        batch_id=int(raw_batch) if raw_batch else None,
        date_from=date_from,
        date_to=date_to,
        model=(query.get("model") or "").strip(),
    )
