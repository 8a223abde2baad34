from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generation import selectors


def home(request: HttpRequest) -> HttpResponse:
    """What exists so far, and what to do next."""
    context = {
        "catalogue": selectors.catalogue_summary(),
        "case_counts": selectors.case_counts_by_status(),
        "batches": selectors.recent_batches(),
        "endpoint": selectors.default_endpoint(),
    }
    return render(request, "home.html", context)
