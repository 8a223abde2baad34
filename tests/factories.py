"""factory_boy factories for the domain model. Tests build data with these or with
the real services; a factory never bypasses a model invariant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import F

from generation import rendering
from generation.models import (
    ArtefactKind,
    ArtefactVersion,
    Case,
    CaseStatus,
    GenerationBatch,
    IcdCode,
    LlmEndpoint,
    LlmModel,
    PhysicianRole,
    VersionSource,
    code_compact,
)
from generation.services.batch_counters import new_cases_deltas, status_deltas
from generation.services.cases import cases_content_changed
from medsynth_site.roles import ADMIN, CLINICIAN


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class ClinicianFactory(UserFactory):
    username = factory.Sequence(lambda n: f"clinician{n}")

    @factory.post_generation
    def role(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.groups.add(Group.objects.get(name=CLINICIAN))


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True

    @factory.post_generation
    def role(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.groups.add(Group.objects.get(name=ADMIN))


class IcdCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IcdCode
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"Z{n // 10:02d}.{n % 10}")
    code_compact = factory.LazyAttribute(lambda o: code_compact(o.code))
    description = factory.Sequence(lambda n: f"Test condition {n}")
    chapter = "21"
    chapter_title = "Factors influencing health status and contact with health services (Z00-Z99)"
    block = "Z00-Z13"
    block_title = "Persons encountering health services for examinations (Z00-Z13)"
    depth = 2
    is_billable = True


class PhysicianRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhysicianRole
        django_get_or_create = ("name",)

    name = "Family medicine physician"


class LlmEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LlmEndpoint
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"endpoint-{n}")
    base_url = "http://127.0.0.1:9/v1"
    api_key_env = ""
    default_model = "test-model"


class LlmModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LlmModel

    endpoint = factory.SubFactory(LlmEndpointFactory)
    name = factory.LazyAttribute(lambda o: o.endpoint.default_model)


class GenerationBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationBatch

    name = factory.Sequence(lambda n: f"Batch {n}")


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    batch = factory.SubFactory(GenerationBatchFactory)
    code = factory.SubFactory(IcdCodeFactory)
    slot = factory.Sequence(lambda n: n + 1)
    role = factory.SubFactory(PhysicianRoleFactory)
    status = CaseStatus.PLANNED

    @classmethod
    def _create(cls, model_class: type[Case], *args: Any, **kwargs: Any) -> Case:
        """The case, counted in its batch's counters as the services count the cases they
        create (its batch's status is left as the test set it)."""
        case: Case = super()._create(model_class, *args, **kwargs)
        _batch_counters_add(case.batch_id, new_cases_deltas(statuses=[case.status], produced=0))
        return case


def case_status_force(case: Case, status: str) -> None:
    """Put a case in `status` whatever the state machine says (a test's setup), counted in its
    batch's counters (its batch's status is left as the test set it)."""
    Case.objects.filter(pk=case.pk).update(status=status)
    _batch_counters_add(case.batch_id, status_deltas(moved={case.status: 1}, to=status))
    case.status = status


def _batch_counters_add(batch_id: int, deltas: Mapping[str, int]) -> None:
    changed = {counter: F(counter) + delta for counter, delta in deltas.items() if delta}
    if changed:
        GenerationBatch.objects.filter(pk=batch_id).update(**changed)


SAMPLE_SCENARIO = {
    "role": "Family medicine physician",
    "variables": {
        "demographics": "58-year-old retired bus driver, lives with his wife.",
        "symptom_description": "Three months of increasing thirst and night-time urination.",
    },
}
SAMPLE_NOTE = {
    "chief_complaint": "Increased thirst.",
    "subjective": "Reports polyuria and polydipsia for three months.",
    "objective": "BP 138/86. BMI 31. HbA1c 8.1%.",
    "assessment": "Type 2 diabetes mellitus without complications.",
    "plan": "Start metformin 500 mg by mouth twice daily. Recheck HbA1c in 3 months.",
}
SAMPLE_DIALOGUE = {
    "turns": [
        {"speaker": "doctor", "text": "Hi, what brings you in today?"},
        {"speaker": "patient", "text": "I'm thirsty all the time, and I'm up at night to pee."},
        {
            "speaker": "doctor",
            "text": "Your HbA1c came back at 8.1 percent, so we'll start metformin 500 mg twice a day.",
        },
    ]
}
SAMPLE_CONTENT = {
    ArtefactKind.SCENARIO: SAMPLE_SCENARIO,
    ArtefactKind.NOTE: SAMPLE_NOTE,
    ArtefactKind.DIALOGUE: SAMPLE_DIALOGUE,
}


class ArtefactVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ArtefactVersion

    case = factory.SubFactory(CaseFactory)
    kind = ArtefactKind.NOTE
    number = factory.Sequence(lambda n: n + 1)
    source = VersionSource.LLM_POLISHED
    content = factory.LazyAttribute(lambda o: SAMPLE_CONTENT[o.kind])
    text = factory.LazyAttribute(lambda o: rendering.render(o.kind, o.content))

    @classmethod
    def _create(cls, model_class: type[ArtefactVersion], *args: Any, **kwargs: Any) -> ArtefactVersion:
        """Written as the services write a version: one that can be current starts a review round."""
        version = super()._create(model_class, *args, **kwargs)
        if version.source != VersionSource.HUMAN_DRAFT:
            cases_content_changed(case_ids=[version.case_id], at=version.created_at)
        return version


# --- Approved pairs for dataset export tests (appended by the dataset export work) ---------


class ReviewDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "review.ReviewDecision"

    case = factory.SubFactory(CaseFactory)
    stage = "pair"
    reviewer = factory.SubFactory(ClinicianFactory)
    action = "approve"


def approved_pair_create(
    *,
    code: IcdCode | None = None,
    batch: GenerationBatch | None = None,
    note: dict | None = None,
    dialogue: dict | None = None,
    reviewers: int = 1,
    dissenters: int = 0,
    note_text: str | None = None,
    dialogue_text: str | None = None,
) -> Case:
    """An APPROVED case whose pair decisions name note and dialogue version 1: `reviewers`
    approvals, then `dissenters` rejections recorded before them."""
    case = CaseFactory(
        code=code or IcdCodeFactory(), batch=batch or GenerationBatchFactory(), status=CaseStatus.APPROVED
    )
    note_content, dialogue_content = note or SAMPLE_NOTE, dialogue or SAMPLE_DIALOGUE
    note_version = ArtefactVersionFactory(
        case=case,
        kind=ArtefactKind.NOTE,
        number=1,
        content=note_content,
        text=note_text or rendering.render("note", note_content),
    )
    dialogue_version = ArtefactVersionFactory(
        case=case,
        kind=ArtefactKind.DIALOGUE,
        number=1,
        content=dialogue_content,
        text=dialogue_text or rendering.render("dialogue", dialogue_content),
    )
    versions = {"note_version": note_version, "dialogue_version": dialogue_version}
    for _ in range(dissenters):
        ReviewDecisionFactory(case=case, action="reject", reason="other", comment="Not convincing.", **versions)
    for _ in range(reviewers):
        ReviewDecisionFactory(case=case, action="approve", **versions)
    return case
