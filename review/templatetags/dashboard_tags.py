"""How a dashboard table shows a cell, by its column's kind (the CSV keeps the raw value)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from review.dashboards.figures import Column

register = template.Library()


@register.filter
def dashboard_cell(row: dict[str, Any], column: Column) -> str:
    value = row.get(column.key)
    if value is None:
        return "–"
    if column.kind == "share":
        return f"{100 * float(value):.1f}%"
    if column.kind == "money":
        return f"${Decimal(value):,.4f}"
    if column.kind == "number":
        return f"{float(value):,.2f}"
    if column.kind == "seconds":
        return f"{float(value):,.0f} s"
    if column.kind == "count":
        return f"{int(value):,}"
    return str(value)


@register.filter
def is_numeric(column: Column) -> bool:
    return column.kind != "text"
