"""The root of every domain error.

A service refuses a request by raising a subclass of DomainError whose message is
written for the person who asked (a reviewer, an admin, a command-line user). Views and
commands turn it into a message in one place; anything else that escapes is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class DomainError(ValueError):
    """A request the domain refuses; str(error) is shown to the user as it is."""


@contextmanager
def on_refusal(show: Callable[[str], object]) -> Iterator[None]:
    """Run the block; when the domain refuses it, hand the refusal's message to `show`
    (a form's errors, a flash message) and carry on after the block.

    A view puts its success path inside the block, so what follows the block runs only on
    a refusal. Any other exception is a bug and propagates.
    """
    try:
        yield
    except DomainError as refusal:
        show(str(refusal))
