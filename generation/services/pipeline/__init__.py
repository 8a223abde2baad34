"""The MedSynth pipeline, one agent step at a time.

Each step is a PipelineStep row keyed by (case, agent, attempt) and run by one Celery
task (generation.tasks.run_pipeline_step). A step claims its row under a lease before
calling the model, stores its output as a new immutable ArtefactVersion, moves the case
through its state machine and creates the next step, all in one transaction; the next
task is enqueued only after that commit. A redelivered task finds its step done, or
running under a live lease, and returns; a step whose worker died is taken over once its
lease has run out (see `leases`, and generation.services.recovery).

    provider -> judge -(reject: revision with feedback, capped)-> provider
             -> [scenario gate] -> note writer -> note polisher -> [note gate]
             -> dialogue generator (from the POLISHED note) -> dialogue polisher
             -> [dialogue gate] -> final pair review

The modules: `config` (a batch's settings), `steps` (a step's life), `leases` (a running
step's liveness and time limit), `runners` (one runner per agent, grouped by stage),
`lifecycle` (a case's start, gates, verdict, regeneration and retry), `provider_batches`
(Batch API mode: a step's agent call goes out in a provider batch, and its reply comes back
through the same runner and structured_completion). A batch's counters move with its cases
(generation.services.batch_counters, called by generation.services.cases).
Which statuses and agents make up each stage lives with the state machine in
generation.models.pipeline.
"""

from generation.models import GATE_STAGES
from generation.services.pipeline.config import (
    AGENT_MODULES,
    DEFAULT_TEMPERATURES,
    JUDGE_LLM,
    JUDGE_SIMILARITY_ONLY,
    PipelineConfig,
    pipeline_config,
)
from generation.services.pipeline.errors import (
    AdvanceNotAllowed,
    PipelineError,
    RegenerationNotAllowed,
    RetryNotAllowed,
)
from generation.services.pipeline.lifecycle import (
    case_advance_after_review,
    case_finish,
    case_regenerate,
    case_retry,
    case_start,
    cases_start,
)
from generation.services.pipeline.runners import STEP_RUNNERS, pipeline_step_run
from generation.services.pipeline.steps import step_create

__all__ = [
    "AGENT_MODULES",
    "DEFAULT_TEMPERATURES",
    "GATE_STAGES",
    "JUDGE_LLM",
    "JUDGE_SIMILARITY_ONLY",
    "STEP_RUNNERS",
    "AdvanceNotAllowed",
    "PipelineConfig",
    "PipelineError",
    "RegenerationNotAllowed",
    "RetryNotAllowed",
    "case_advance_after_review",
    "case_finish",
    "case_regenerate",
    "case_retry",
    "case_start",
    "cases_start",
    "pipeline_config",
    "pipeline_step_run",
    "step_create",
]
