"""Scenario Judge: a reason per criterion, then approve or reject."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from generation import rendering
from generation.agents.prompting import Message, agent_messages, prompt_version_id
from generation.models import AgentName, IcdCode

AGENT = AgentName.SCENARIO_JUDGE
VERSION = 1
PROMPT_VERSION = prompt_version_id(agent=AGENT, version=VERSION)
DEFAULT_TEMPERATURE = 0.0
CRITERIA = ("medical_correctness", "plausibility", "diversity")


class CriterionVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    passed: bool


class ScenarioJudgeOutput(BaseModel):
    """Reasons come before the decision so the model reasons first."""

    model_config = ConfigDict(extra="forbid")
    medical_correctness: CriterionVerdict
    plausibility: CriterionVerdict
    diversity: CriterionVerdict
    approved: bool


def build_messages(
    *,
    code: IcdCode,
    scenario: dict[str, object],
    similar: list[dict[str, object]],
    variable_names: Mapping[str, str],
) -> list[Message]:
    return agent_messages(
        agent=AGENT,
        version=VERSION,
        context={
            "code": code,
            "scenario": rendering.scenario_text(scenario, variable_names=variable_names),
            "similar": similar,
        },
    )


def verdict_approved(output: ScenarioJudgeOutput) -> bool:
    """A scenario passes only when the judge approves AND every criterion passed: a
    contradictory verdict is a rejection."""
    return output.approved and all(getattr(output, name).passed for name in CRITERIA)


def rejection_feedback(output: ScenarioJudgeOutput) -> str:
    failed = [
        f"- {name.replace('_', ' ')}: {getattr(output, name).reason.strip()}"
        for name in CRITERIA
        if not getattr(output, name).passed
    ]
    if not failed:
        failed = [f"- {name.replace('_', ' ')}: {getattr(output, name).reason.strip()}" for name in CRITERIA]
    return "The judge rejected the scenario.\n" + "\n".join(failed)
