"""Scenario Provider: a physician role and the scenario variables for an ICD-10 code."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from generation import rendering
from generation.agents.prompting import (
    Message,
    agent_messages,
    as_json,
    prompt_version_id,
)
from generation.examples import WorkedExample
from generation.models import AgentName, IcdCode, PhysicianRole, SurveySnapshot
from generation.selectors import RankedVariable

AGENT = AgentName.SCENARIO_PROVIDER
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 1.0


@lru_cache(maxsize=8)
def output_schema(variable_keys: tuple[str, ...]) -> type[BaseModel]:
    """{"planning", "role", "variables": {one string per key}}, built from the variable table."""
    strict = ConfigDict(extra="forbid")
    variables = create_model(  # type: ignore[call-overload]
        "ScenarioVariables", __config__=strict, **dict.fromkeys(variable_keys, (str, ...))
    )
    return create_model(
        "ScenarioProviderOutput", __config__=strict, planning=(str, ...), role=(str, ...), variables=(variables, ...)
    )


def _example_pair(example: WorkedExample) -> tuple[str, str]:
    given = f"ICD-10-CM code: {example.code} ({example.description})"
    return given, as_json({"role": example.scenario.get("role", ""), "variables": example.scenario["variables"]})


def build_messages(
    *,
    code: IcdCode,
    roles: list[PhysicianRole],
    variables: list[RankedVariable],
    survey: SurveySnapshot | None,
    examples: list[WorkedExample],
    fixed_role: str = "",
    previous: dict[str, Any] | None = None,
    feedback: str = "",
) -> list[Message]:
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        examples=[_example_pair(example) for example in examples],
        context={
            "code": code,
            "role_names": [role.name for role in roles],
            "fixed_role": fixed_role,
            "variables": variables,
            "survey": survey,
            "previous": rendering.scenario_text(previous) if previous else "",
            "feedback": feedback,
        },
    )


def scenario_content(*, output: BaseModel, role: PhysicianRole | None, variable_keys: list[str]) -> dict[str, Any]:
    """The released scenario: the resolved role and the variables in table order; the
    planning stays in the call record and the step result."""
    values = output.variables.model_dump()  # type: ignore[attr-defined]
    return {
        "role": role.name if role else str(output.role).strip(),  # type: ignore[attr-defined]
        "variables": {key: str(values.get(key, "")).strip() for key in variable_keys},
    }


_MARKUP = re.compile(r"[*_#`\"'\[\]]|^\s*(physician\s+)?role\s*:\s*", re.IGNORECASE)


def _normalised(name: str) -> str:
    return " ".join(_MARKUP.sub(" ", name).casefold().replace("-", " ").split())


def role_resolve(*, name: str, roles: list[PhysicianRole]) -> PhysicianRole | None:
    """The role the model meant, tolerating markdown, case, plurals and near misses
    ("**Family Medicine**", "cardiology specialist" -> Cardiologist is not guessed)."""
    wanted = _normalised(name)
    if not wanted or not roles:
        return None
    by_name = {_normalised(role.name): role for role in roles}
    if wanted in by_name:
        return by_name[wanted]
    for normalised, role in by_name.items():
        if normalised.startswith(wanted) or wanted.startswith(normalised):
            return role
    for normalised, role in by_name.items():
        if normalised in wanted:
            return role
    close = difflib.get_close_matches(wanted, list(by_name), n=1, cutoff=0.75)
    return by_name[close[0]] if close else None


# When the model names no role we know, the encounter goes to primary care, as most do.
FALLBACK_ROLES = ("Family medicine physician", "General physician")


def fallback_role(*, roles: list[PhysicianRole]) -> PhysicianRole | None:
    by_name = {role.name: role for role in roles}
    return next((by_name[name] for name in FALLBACK_ROLES if name in by_name), roles[0] if roles else None)
