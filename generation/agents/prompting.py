"""What every agent's prompt is made of: versioned template files, the survey-ranked
variables and the in-context examples.

The system message (instructions + examples) comes first and changes only with the
prompt version and the worked examples (which rotate per case: generation.examples), so
the instructions stay a stable prefix for provider-side prompt caching; everything else
case-specific goes into the last user message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.template import Context, Engine

# TEMP re-export until the pipeline imports it from generation.selectors
from generation.selectors import ranked_variables as ranked_variables

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

Message = dict[str, str]


@lru_cache(maxsize=1)
def _engine() -> Engine:
    # Prompts are plain text for a model, not HTML: no escaping.
    return Engine(dirs=[str(PROMPTS_DIR)], autoescape=False)


def prompt_render(*, agent: str, version: int, part: str, context: dict[str, Any]) -> str:
    template = _engine().get_template(f"{agent}.v{version}.{part}.txt")
    return template.render(Context(context, autoescape=False)).strip()


def prompt_version_id(*, agent: str, version: int) -> str:
    return f"{agent}@{version}"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def system_with_examples(*, instructions: str, examples: list[tuple[str, str]]) -> str:
    """Instructions, then worked examples as (input, output) text pairs."""
    if not examples:
        return instructions
    blocks = [
        f"Worked example {number}.\nInput:\n{given}\nOutput:\n{expected}"
        for number, (given, expected) in enumerate(examples, start=1)
    ]
    return instructions + "\n\n" + "\n\n".join(blocks)


def messages_build(*, system: str, user: str) -> list[Message]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def agent_messages(
    *, agent: str, version: int, context: dict[str, Any], examples: Sequence[tuple[str, str]] = ()
) -> list[Message]:
    """An agent's system prompt (instructions, then worked examples: the stable prefix) and
    its user prompt rendered with `context`."""
    system = system_with_examples(
        instructions=prompt_render(agent=agent, version=version, part="system", context={}), examples=list(examples)
    )
    user = prompt_render(agent=agent, version=version, part="user", context=context)
    return messages_build(system=system, user=user)


def messages_without_system(messages: list[Message]) -> list[Message]:
    """The system text folded into the first user turn, for chat templates without a
    system role (llama.cpp's Gemma format silently drops it). The folded text still comes
    first, so the server's prefix cache keeps matching."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    elif system:
        rest.insert(0, {"role": "user", "content": system})
    return rest
