"""The reference rows the agents' prompts are built from (the survey's quality variables and
the physician roles), kept by each worker process for REFERENCE_CACHE_SECONDS
(generation/caching.py): every step read them, and they change when an admin edits them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from generation.caching import kept_for
from generation.models import PhysicianRole, QualityVariable, SurveySnapshot
from generation.selectors import RankedVariable, ranked_variables


@kept_for("REFERENCE_CACHE_SECONDS")
def active_variables() -> tuple[QualityVariable, ...]:
    """The active variables in the survey's table order."""
    return tuple(QualityVariable.objects.filter(is_active=True).order_by("position"))


def active_variable_keys() -> list[str]:
    return [variable.key for variable in active_variables()]


def variables_ranked(*, snapshot: SurveySnapshot | None) -> list[RankedVariable]:
    return ranked_variables(snapshot=snapshot, variables=active_variables())


@kept_for("REFERENCE_CACHE_SECONDS")
def variable_names() -> Mapping[str, str]:
    """Every variable's name by key, retired ones too (an old survey may weigh them)."""
    return MappingProxyType(dict(QualityVariable.objects.values_list("key", "name")))


@kept_for("REFERENCE_CACHE_SECONDS")
def active_roles() -> tuple[PhysicianRole, ...]:
    return tuple(PhysicianRole.objects.filter(is_active=True))
