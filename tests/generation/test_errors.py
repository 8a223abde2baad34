"""Domain refusals become the user's message in one place; bugs are not swallowed."""

import pytest

from generation.errors import DomainError, on_refusal


def _refuse() -> None:
    raise DomainError("Pairs per code must be between 1 and 50.")


def test_a_refusal_is_shown_and_the_rest_of_the_block_is_skipped():
    shown: list[str] = []
    steps: list[str] = []
    with on_refusal(shown.append):
        _refuse()
        steps.append("success path")
    steps.append("after the block")
    assert shown == ["Pairs per code must be between 1 and 50."]
    assert steps == ["after the block"]


def test_nothing_is_shown_when_the_block_succeeds():
    shown: list[str] = []
    with on_refusal(shown.append):
        result = 42
    assert (shown, result) == ([], 42)


def test_an_error_that_is_not_a_refusal_propagates():
    shown: list[str] = []
    with pytest.raises(ValueError, match="bug"), on_refusal(shown.append):
        raise ValueError("bug")
    assert shown == []
