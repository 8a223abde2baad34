import pytest

from generation.models import CASE_TRANSITIONS, Case, CaseStatus, InvalidTransition
from generation.services.cases import case_transition
from tests.factories import CaseFactory

ALLOWED = [(source, target) for source, targets in CASE_TRANSITIONS.items() for target in sorted(targets)]
FORBIDDEN = [
    (CaseStatus.PLANNED, CaseStatus.APPROVED),
    (CaseStatus.SCENARIO_GENERATING, CaseStatus.APPROVED),
    (CaseStatus.NOTE_GENERATING, CaseStatus.SCENARIO_REVIEW),
    (CaseStatus.DIALOGUE_REVIEW, CaseStatus.APPROVED),
    (CaseStatus.APPROVED, CaseStatus.REJECTED),
    (CaseStatus.CANCELLED, CaseStatus.PLANNED),
    (CaseStatus.FAILED, CaseStatus.APPROVED),
]


def test_every_status_has_a_row_in_the_transition_table():
    assert set(CASE_TRANSITIONS) == set(CaseStatus.values)
    for targets in CASE_TRANSITIONS.values():
        assert targets <= set(CaseStatus.values)


def test_cancelled_is_final_and_every_live_status_can_be_cancelled_or_finished():
    assert CASE_TRANSITIONS[CaseStatus.CANCELLED] == frozenset()
    for status in [CaseStatus.PLANNED, CaseStatus.SCENARIO_GENERATING, CaseStatus.PAIR_REVIEW]:
        assert CaseStatus.CANCELLED in CASE_TRANSITIONS[status]


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_an_allowed_transition_moves_the_case_and_starts_a_new_round(source, target):
    case = CaseFactory(status=source)
    entered = case.status_changed_at
    case_transition(case=case, to=target)
    case.refresh_from_db()
    assert case.status == target
    assert case.status_changed_at > entered  # the review round counts decisions from here


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_a_forbidden_transition_is_refused_and_changes_nothing(source, target):
    case = CaseFactory(status=source)
    with pytest.raises(InvalidTransition, match=f"{source} -> {target} is not allowed"):
        case_transition(case=case, to=target)
    assert Case.objects.get(pk=case.pk).status == source


@pytest.mark.django_db
def test_a_stale_in_memory_case_loses_the_race_instead_of_moving_twice():
    case = CaseFactory(status=CaseStatus.NOTE_GENERATING)
    stale_copy = Case.objects.get(pk=case.pk)
    case_transition(case=case, to=CaseStatus.DIALOGUE_GENERATING)

    with pytest.raises(InvalidTransition, match="is dialogue_generating now"):
        case_transition(case=stale_copy, to=CaseStatus.FAILED)
    assert Case.objects.get(pk=case.pk).status == CaseStatus.DIALOGUE_GENERATING
