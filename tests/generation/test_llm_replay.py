"""The replay helper other tests rely on: it must fail loudly when the code sends more than expected."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from generation.llm import structured_completion
from tests.factories import LlmEndpointFactory
from tests.llm_replay import chat_response, llm_replay

pytestmark = pytest.mark.django_db


class Word(BaseModel):
    word: str


def ask(prompt: str) -> Word:
    return structured_completion(
        endpoint=LlmEndpointFactory(),
        messages=[{"role": "user", "content": prompt}],
        schema=Word,
        agent="note_writer",
        prompt_version="v1",
        temperature=0,
    ).output


def test_a_request_beyond_the_recorded_answers_fails_the_test_with_its_number():
    with llm_replay([chat_response({"word": "one"})]):
        assert ask("first") == Word(word="one")
        with pytest.raises(AssertionError, match="Unexpected request #2 POST /v1/chat/completions"):
            ask("second")


def test_an_answer_can_depend_on_what_was_asked():
    def echo(request):
        return chat_response({"word": request.messages[-1]["content"].upper()})

    with llm_replay([echo, echo]) as replay:
        assert ask("alpha") == Word(word="ALPHA")
        assert ask("beta") == Word(word="BETA")

    assert "beta" in replay.chat_requests[1].prompt_text
