import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import Case, CaseStatus
from review import selectors, services
from review.models import ReviewAction
from review.views import queue as queue_views
from tests.factories import ClinicianFactory, GenerationBatchFactory, IcdCodeFactory
from tests.review.review_fixtures import case_in_review, seen

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def queue_url(queue="pair", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{reverse('review:queue', args=[queue])}{'?' + query if query else ''}"


def listed(response, case) -> bool:
    return f"{reverse('review:item', args=[case.pk])}?" in response.content.decode()


def test_full_page_versus_htmx_table(clinician_client):
    case_in_review()
    full = clinician_client.get(queue_url()).content.decode()
    partial = clinician_client.get(queue_url(), **HTMX).content.decode()
    assert "<html" in full
    assert 'class="filters"' in full
    assert partial.lstrip().startswith('<div id="queue-table"')
    assert "<html" not in partial


def test_each_stage_queue_holds_its_status(clinician_client):
    note_case = case_in_review(CaseStatus.NOTE_REVIEW)
    pair_case = case_in_review(CaseStatus.PAIR_REVIEW)
    note_queue = clinician_client.get(queue_url("note"))
    assert listed(note_queue, note_case)
    assert not listed(note_queue, pair_case)


def test_filters_and_search(clinician_client):
    diabetes = case_in_review(code=IcdCodeFactory(code="E11.9", description="Type 2 diabetes mellitus"))
    other_batch = GenerationBatchFactory(name="Winter batch")
    asthma = case_in_review(code=IcdCodeFactory(code="J45.909", description="Asthma", chapter="10"), batch=other_batch)
    # Set the flags by hand: the automatic checks judge the sample texts on their own.
    Case.objects.filter(pk=diabetes.pk).update(has_check_flags=False)
    Case.objects.filter(pk=asthma.pk).update(has_check_flags=True)
    checks = {
        queue_url(code="E11"): (True, False),
        queue_url(q="asthma"): (False, True),
        queue_url(chapter="10"): (False, True),
        queue_url(batch=other_batch.pk): (False, True),
        queue_url(flagged="on"): (False, True),
    }
    for url, (has_diabetes, has_asthma) in checks.items():
        response = clinician_client.get(url, **HTMX)
        assert (listed(response, diabetes), listed(response, asthma)) == (has_diabetes, has_asthma), url


def test_decided_items_leave_your_queue_but_not_your_colleagues(clinician, clinician_client):
    case = case_in_review(reviews_required=2)
    services.review_decision_record(
        case=case, reviewer=clinician, action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )
    assert not listed(clinician_client.get(queue_url()), case)
    colleague = ClinicianFactory()
    clinician_client.force_login(colleague)
    assert listed(clinician_client.get(queue_url()), case)


def test_disputed_gated_stage_reaches_the_adjudication_queue(admin_member_client):
    case = case_in_review(CaseStatus.NOTE_REVIEW, reviews_required=2)
    services.review_decision_record(
        case=case, reviewer=ClinicianFactory(), action=ReviewAction.APPROVE, seen=seen(case), opened_at=None
    )
    services.review_decision_record(
        case=case,
        reviewer=ClinicianFactory(),
        action=ReviewAction.REJECT,
        seen=seen(case),
        opened_at=None,
        reason="other",
        comment="No.",
    )
    assert listed(admin_member_client.get(queue_url("adjudication")), case)


def test_home_shows_counts_per_queue(clinician_client):
    case_in_review(CaseStatus.NOTE_REVIEW)
    case_in_review(CaseStatus.NOTE_REVIEW)
    body = clinician_client.get(reverse("review:home")).content.decode()
    assert 'Notes</h2><p class="count">2</p>' in body
    assert "Adjudication" not in body  # clinicians have no adjudication queue


def _queue_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(queue_url()).status_code == 200
    return len(queries)


def test_queue_queries_do_not_grow_with_items(clinician_client, django_assert_max_num_queries):
    case_in_review()
    _queue_queries(clinician_client)
    few = _queue_queries(clinician_client)
    for _ in range(15):
        case_in_review(has_check_flags=True)
    assert _queue_queries(clinician_client) == few
    with django_assert_max_num_queries(few):
        clinician_client.get(queue_url())


def test_the_queue_filters_by_check_code_and_severity(clinician_client):
    unspoken = case_in_review()
    misplaced = case_in_review()
    clean = case_in_review()
    # The summary the checks keep of each case's current findings (set by hand, as above).
    Case.objects.filter(pk=unspoken.pk).update(check_summary=" coverage_prescription_unspoken:error ")
    Case.objects.filter(pk=misplaced.pk).update(check_summary=" soap_misplaced:warning ")
    Case.objects.filter(pk=clean.pk).update(check_summary="")
    checks = {
        queue_url(check="coverage_prescription_unspoken"): (True, False, False),
        queue_url(check="soap_misplaced"): (False, True, False),
        queue_url(severity="error"): (True, False, False),
        queue_url(severity="warning"): (False, True, False),
        queue_url(check="soap_misplaced", severity="error"): (False, False, False),
        queue_url(): (True, True, True),
    }
    for url, expected in checks.items():
        response = clinician_client.get(url, **HTMX)
        assert (listed(response, unspoken), listed(response, misplaced), listed(response, clean)) == expected, url


def test_the_check_filter_offers_every_check_and_keeps_its_choice(clinician_client):
    page = clinician_client.get(queue_url(check="dialogue_language")).content.decode()
    assert '<option value="dialogue_language" selected>' in page
    assert '<option value="coverage_note_omits">' in page


def test_a_long_queue_is_counted_only_up_to_the_limit(monkeypatch, clinician_client):
    monkeypatch.setattr(selectors, "QUEUE_COUNT_LIMIT", 2)
    for _ in range(3):
        case_in_review()
    home = clinician_client.get(reverse("review:home")).content.decode()
    queue = clinician_client.get(queue_url()).content.decode()
    assert '<p class="count">2+</p>' in home
    assert "2+ cases waiting." in queue
    monkeypatch.setattr(selectors, "QUEUE_COUNT_LIMIT", 3)
    assert "3 cases waiting." in clinician_client.get(queue_url()).content.decode()


def test_the_pages_past_a_bounded_count_stay_reachable(monkeypatch, clinician_client):
    monkeypatch.setattr(selectors, "QUEUE_COUNT_LIMIT", 1)
    monkeypatch.setattr(queue_views, "PAGE_SIZE", 1)
    cases = [case_in_review() for _ in range(3)]
    for number, shown in ((1, "Page 1 of 2+"), (2, "Page 2 of 3+"), (3, "Page 3 of 3<")):
        page = clinician_client.get(queue_url(page=number))
        assert shown in page.content.decode()
        assert listed(page, cases[number - 1])
