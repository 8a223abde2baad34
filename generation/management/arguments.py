"""Argument types the management commands share."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation


def budget_amount(value: str) -> Decimal:
    """A dollar amount from the command line ("12.50" or "$12.50")."""
    problem = f"{value!r} is not an amount in dollars, e.g. 25 or 12.50"
    try:
        amount = Decimal(value.strip().lstrip("$"))
    except InvalidOperation as error:
        raise argparse.ArgumentTypeError(problem) from error
    if not amount.is_finite():
        raise argparse.ArgumentTypeError(problem)
    return amount
