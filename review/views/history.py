"""Every version of a case with who and when, word-level diffs between any two, and
the provenance: pipeline steps and agent calls with the raw LLM output."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from generation.models import ArtefactKind, Case
from review import selectors
from review.diffing import artefact_diff, versions_to_compare
from review.views._common import ADJUDICATE, REVIEW, ReviewRequest, case_or_404, page_or_partial, queue_for, requires


def _sees_others(request: ReviewRequest, case: Case) -> bool:
    """Blind review: whether other reviewers' names and comments may be shown."""
    return selectors.sees_others_work(case=case, viewer=request.user, can_adjudicate=request.user.has_perm(ADJUDICATE))


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@requires(REVIEW)
@require_GET
def history(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = case_or_404(case_id)
    all_versions = selectors.case_history(case=case)
    kinds = [kind for kind in ArtefactKind.values if any(v.kind == kind for v in all_versions)]
    kind = request.GET.get("kind") if request.GET.get("kind") in kinds else (kinds[-1] if kinds else "")
    of_kind = [v for v in all_versions if v.kind == kind]
    before, after = versions_to_compare(
        of_kind, before_number=_number(request.GET.get("a")), after_number=_number(request.GET.get("b"))
    )
    diffs = artefact_diff(kind=kind, before=before, after=after) if before and after and kind else []
    sees_others = _sees_others(request, case)
    context = {
        "case": case,
        "queue": queue_for(request, case),
        "versions": all_versions,
        "kinds": kinds,
        "kind": kind,
        "of_kind": of_kind,
        "before": before,
        "after": after,
        "diffs": diffs,
        "decisions": selectors.decisions_visible_to(case=case, viewer=request.user, sees_others=sees_others),
        "sees_others": sees_others,
    }
    return page_or_partial(request, "review/history.html", "version-diff", context)


@requires(REVIEW)
@require_GET
def provenance(request: ReviewRequest, case_id: int) -> HttpResponse:
    case = case_or_404(case_id)
    provenance = selectors.case_provenance(case=case, viewer=request.user, sees_others=_sees_others(request, case))
    context = {"case": case, "queue": queue_for(request, case), "provenance": provenance}
    return page_or_partial(request, "review/provenance.html", "provenance-panel", context)
