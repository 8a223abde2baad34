"""The scenario stage: the provider writes a scenario, the judge approves it or sends it
back with feedback (a capped revision loop)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from generation import rendering, similarity
from generation.agents import scenario_judge, scenario_provider
from generation.agents.prompting import Message
from generation.models import (
    AgentName,
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    IcdCode,
)
from generation.services.cases import case_transition
from generation.services.pipeline.config import JUDGE_SIMILARITY_ONLY
from generation.services.pipeline.reference import active_roles, active_variable_keys, variable_names, variables_ranked
from generation.services.pipeline.runners.context import (
    AgentOutput,
    StepContext,
    agent_call,
    previous_version,
    required_version,
    step_complete,
    worked_examples,
)
from generation.services.pipeline.steps import step_create, step_succeed


def run_scenario_provider(context: StepContext) -> None:
    step, case = context.step, context.case
    # The schema lists the variables in the survey's table order, so it stays the same
    # between survey versions; the prompt carries the ranking.
    keys = active_variable_keys()
    roles = list(active_roles())
    previous = previous_version(context, ArtefactKind.SCENARIO)
    examples = worked_examples(context)
    messages = scenario_provider.build_messages(
        code=case.assigned_code(),
        roles=roles,
        variables=variables_ranked(snapshot=case.survey_snapshot),
        survey=case.survey_snapshot,
        examples=examples,
        fixed_role=context.fixed_role,
        previous=previous.content if previous else None,
        feedback=step.feedback,
    )
    result = agent_call(
        context, messages=messages, schema=scenario_provider.output_schema(tuple(keys)), examples=examples
    )
    output: Any = result.output
    role = scenario_provider.role_resolve(
        name=context.fixed_role or output.role, roles=roles
    ) or scenario_provider.fallback_role(roles=roles)
    content = scenario_provider.scenario_content(output=output, role=role, variable_keys=keys)
    with transaction.atomic():
        if role is not None:
            Case.objects.filter(pk=case.pk).update(role=role)
        step_complete(
            context,
            result={"planning": output.planning, "role_returned": output.role, "role": role.name if role else None},
            output=AgentOutput(
                kind=ArtefactKind.SCENARIO,
                content=content,
                source=context.raw_source,
                call=result.call,
                parent=previous,
            ),
        )


def run_scenario_judge(context: StepContext) -> None:
    scenario = required_version(context, ArtefactKind.SCENARIO)
    verdict = _verdict(context, scenario=scenario)
    if verdict["approved"]:
        step_complete(context, result=verdict)
        return
    with transaction.atomic():
        step_succeed(step=context.step, result=verdict)
        _scenario_rejected(context, feedback=verdict["feedback"])


def _verdict(context: StepContext, *, scenario: ArtefactVersion) -> dict[str, Any]:
    """A near duplicate of an approved scenario is rejected without a model call; on the
    local demo model only that check runs; otherwise the judge model decides."""
    case, config = context.case, context.config
    candidates = similarity.approved_scenarios(code=case.assigned_code(), exclude_case=case)
    similar = similarity.most_similar(content=scenario.content, candidates=candidates, k=config.similar_k)
    compared = [{"case_id": item.case_id, "similarity": round(item.similarity, 4)} for item in similar]
    if similar and similar[0].similarity >= config.near_duplicate_threshold:
        closest = similar[0]
        verdict: dict[str, Any] = {
            "approved": False,
            "near_duplicate": True,
            "similarity": round(closest.similarity, 4),
            "feedback": (
                f"The scenario is a near duplicate (TF-IDF cosine {closest.similarity:.2f}) of the approved "
                f"scenario of case {closest.case_id}. Change at least 4 of the variables: a different patient, "
                "setting, history and outcome."
            ),
        }
    elif config.judge_mode == JUDGE_SIMILARITY_ONLY:
        verdict = {
            "approved": True,
            "near_duplicate": False,
            "judge_mode": JUDGE_SIMILARITY_ONLY,
            "feedback": "",
            "similarity": round(similar[0].similarity, 4) if similar else 0.0,
        }
    else:
        verdict = _model_verdict(context, scenario=scenario, similar=similar)
    verdict.update({"scenario_version_id": scenario.pk, "compared_with": compared})
    return verdict


def judge_messages(
    *, code: IcdCode, scenario: dict[str, Any], similar: list[similarity.SimilarScenario]
) -> list[Message]:
    """The judge's prompt: the scenario beside the approved scenarios most like it."""
    names = variable_names()
    return scenario_judge.build_messages(
        code=code,
        scenario=scenario,
        similar=[
            {"similarity": item.similarity, "text": rendering.scenario_text(item.content, variable_names=names)}
            for item in similar
        ],
        variable_names=names,
    )


def _model_verdict(
    context: StepContext, *, scenario: ArtefactVersion, similar: list[similarity.SimilarScenario]
) -> dict[str, Any]:
    messages = judge_messages(code=context.case.assigned_code(), scenario=scenario.content, similar=similar)
    output: Any = agent_call(context, messages=messages, schema=scenario_judge.ScenarioJudgeOutput).output
    approved = scenario_judge.verdict_approved(output)
    return {
        **output.model_dump(),
        "approved": approved,
        "model_approved": output.approved,
        "feedback": "" if approved else scenario_judge.rejection_feedback(output),
    }


def _scenario_rejected(context: StepContext, *, feedback: str) -> None:
    """Send the scenario back to the provider with the judge's feedback, up to the cap;
    past it, the case needs a person's attention."""
    case = context.case
    Case.objects.filter(pk=case.pk).update(scenario_revisions=F("scenario_revisions") + 1)
    case.refresh_from_db(fields=["scenario_revisions"])
    if case.scenario_revisions > context.config.max_scenario_revisions:
        case_transition(
            case=case,
            to=CaseStatus.NEEDS_ATTENTION,
            expected=CaseStatus.SCENARIO_GENERATING,
            error=f"The judge rejected the scenario {case.scenario_revisions} times "
            f"(cap: {context.config.max_scenario_revisions} revisions). Last feedback: {feedback}",
        )
        return
    step_create(case=case, agent=AgentName.SCENARIO_PROVIDER, feedback=feedback, requested_by=context.step.requested_by)
