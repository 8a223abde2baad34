"""The dashboard figures equal what the database holds (expectations worked out by hand from
tests/review/dashboard_seed.py), whatever the filters; each figure's query count does not
grow with the number of cases; clinicians see only their own throughput."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generation.checks import CHECK_CODES
from review.dashboards import figures, selectors
from review.dashboards.filters import DashboardFilters
from review.models import EditBurden, ReviewDecision
from tests.factories import ClinicianFactory, GenerationBatchFactory, IcdCodeFactory
from tests.review.dashboard_seed import CALL_COST, dashboard_dataset, decision, produced_case

pytestmark = pytest.mark.django_db

ALL = DashboardFilters()


@pytest.fixture
def seeded():
    return dashboard_dataset()


def pick(rows, key, *columns):
    return {row[key]: tuple(row[column] for column in columns) for row in rows}


def test_coverage_by_chapter_counts_cases_against_the_frequency_share(seeded):
    rows = selectors.coverage_by_chapter(filters=ALL)
    assert [row["chapter"] for row in rows] == ["4", "10"]  # chapter order, not text order
    assert pick(rows, "chapter", "planned", "generated", "approved") == {"4": (3, 3, 2), "10": (2, 1, 0)}
    assert pick(rows, "chapter", "planned_share", "approved_share", "frequency_share") == {
        "4": (3 / 5, 2 / 2, 80 / 100),
        "10": (2 / 5, 0 / 2, 20 / 100),
    }


def test_coverage_by_block(seeded):
    rows = selectors.coverage_by_block(filters=ALL)
    assert pick(rows, "block", "planned", "generated", "approved", "frequency_share") == {
        "E08-E13": (2, 2, 2, 0.6),
        "E70-E88": (1, 1, 0, 0.2),
        "J40-J4A": (2, 1, 0, 0.2),
    }


def test_the_funnel(seeded):
    rows = selectors.funnel(filters=ALL)
    assert pick(rows, "step", "cases") == {
        "generated": (4,),
        "flagged": (1,),
        "approved": (1,),
        "edited": (1,),
        "rejected": (1,),
        "regenerated": (1,),
    }
    assert rows[1]["share"] == 1 / 4


def test_rates_by_model_follow_the_call_that_wrote_the_judged_text(seeded):
    # A pair verdict counts for the note and for the dialogue. model-x: c1 two approvals,
    # c2 one edit (the edited note counts for the call of the note it was edited from), c3 one
    # rejection -> 4 verdicts x 2 texts. model-y: c4's regeneration x 2 texts.
    rows = selectors.rates_by_model(filters=ALL)
    assert pick(rows, "model", "verdicts", "approved", "edited", "rejected", "regenerated") == {
        "model-x": (8, 4, 2, 2, 0),
        "model-y": (2, 0, 0, 0, 2),
    }
    model_x = rows[0]
    assert (model_x["approved_rate"], model_x["edited_rate"], model_x["rejected_rate"]) == (0.5, 0.25, 0.25)


def test_rates_by_agent_prompt_version_and_chapter(seeded):
    per_agent = (5, 2, 1, 1, 1)
    by_agent = selectors.rates_by_agent(filters=ALL)
    assert pick(by_agent, "agent", "verdicts", "approved", "edited", "rejected", "regenerated") == {
        "Note polisher": per_agent,
        "Dialogue polisher": per_agent,
    }
    by_prompt = selectors.rates_by_prompt_version(filters=ALL)
    assert {row["prompt_version"] for row in by_prompt} == {"note_polisher@v1", "dialogue_polisher@v1"}
    by_chapter = selectors.rates_by_chapter(filters=ALL)
    assert pick(by_chapter, "chapter", "verdicts", "approved", "edited", "rejected", "regenerated") == {
        "4: Endocrine": (4, 2, 1, 1, 0),
        "10: Respiratory": (1, 0, 0, 0, 1),
    }


def test_top_reject_reasons(seeded):
    assert selectors.reject_reasons(filters=ALL) == [
        {"reason": "factually_wrong", "label": "Factually wrong", "rejections": 1, "share": 1.0}
    ]


def test_edit_burden_is_the_word_edit_distance_per_section(seeded):
    rows = {row["part"]: row for row in selectors.edit_burden(filters=ALL)}
    # Two approved pairs; c2's plan: "500" -> "1000", "by mouth" deleted = 3 word edits of 13 words.
    assert rows["Plan"]["pairs"] == 2
    assert rows["Plan"]["edited_pairs"] == 1
    assert rows["Plan"]["word_edits"] == 3
    assert rows["Plan"]["mean_word_edits"] == 1.5
    assert rows["Plan"]["word_edits_per_100_words"] == pytest.approx(100 * 3 / 26)
    for part in ("Subjective", "Objective", "Assessment", "Dialogue"):
        assert (rows[part]["pairs"], rows[part]["word_edits"]) == (2, 0)


def test_reviewer_throughput_and_median_time(seeded):
    rows = selectors.reviewer_throughput(filters=ALL)
    assert pick(rows, "reviewer", "decisions", "approved", "edited", "rejected", "regenerated", "median_seconds") == {
        "r1": (3, 1, 1, 0, 1, 30),  # 10, 30, 120 s
        "r2": (2, 1, 0, 1, 0, 75),  # 60, 90 s
    }
    assert rows[0]["hours"] == pytest.approx(160 / 3600)


def test_median_of_counts():
    assert selectors.median_of_counts({}) is None
    assert selectors.median_of_counts({5: 1}) == 5
    assert selectors.median_of_counts({1: 2, 9: 1}) == 1  # 1 1 9
    assert selectors.median_of_counts({1: 1, 3: 1, 10: 2}) == 6.5  # 1 3 10 10


def test_agreement_over_time_takes_items_two_reviewers_rated(seeded):
    # Only c1's pair was rated by two reviewers; both accepted.
    seeded_month = timezone.localtime(timezone.now()).strftime("%Y-%m")
    rows = selectors.agreement_over_time(filters=ALL)
    assert [(row["month"], row["items"], row["raters"], row["unanimous_share"]) for row in rows] == [
        (seeded_month, 1, 2, 1.0)
    ]


def test_agreement_over_time_sees_a_disagreement(seeded):
    c4 = seeded.cases["c4"]
    versions = ReviewDecision.objects.filter(case=c4).values("note_version", "dialogue_version")[0]
    decision(c4, seeded.r2, "approve", 20, {"note_version_id": versions["note_version"],
                                            "dialogue_version_id": versions["dialogue_version"]})  # fmt: skip
    rows = selectors.agreement_over_time(filters=ALL)
    assert (rows[0]["items"], rows[0]["unanimous_share"]) == (2, 0.5)


def test_cost_per_approved_pair_by_model(seeded):
    rows = pick(selectors.cost_per_approved_pair(filters=ALL), "model", "calls", "cost", "approved_pairs")
    assert rows == {"model-x": (6, 6 * CALL_COST, 2), "model-y": (2, 2 * CALL_COST, 0)}
    model_x, model_y = selectors.cost_per_approved_pair(filters=ALL)
    assert model_x["cost_per_pair"] == pytest.approx(float(6 * CALL_COST / 2))
    assert model_x["tokens_per_pair"] == 6 * 150 / 2
    assert model_y["cost_per_pair"] is None


def test_check_failure_rates_list_every_check(seeded):
    rows = {row["check"]: row for row in selectors.check_failure_rates(filters=ALL)}
    assert (rows["placeholder"]["checked"], rows["placeholder"]["flagged"], rows["placeholder"]["rate"]) == (4, 1, 0.25)
    assert (rows["missing_section"]["checked"], rows["missing_section"]["flagged"]) == (4, 0)
    assert set(rows) == set(CHECK_CODES)


def test_the_batch_filter(seeded):
    only_y = DashboardFilters(batch_id=seeded.batch_y.pk)
    assert pick(selectors.coverage_by_chapter(filters=only_y), "chapter", "planned", "generated", "approved") == {
        "4": (0, 0, 0),  # the chapter still shows: it has imported frequencies
        "10": (2, 1, 0),
    }
    assert [row["reviewer"] for row in selectors.reviewer_throughput(filters=only_y)] == ["r1"]


def test_the_model_filter(seeded):
    only_x = DashboardFilters(model="model-x")
    assert pick(selectors.funnel(filters=only_x), "step", "cases")["generated"] == (3,)
    assert [row["model"] for row in selectors.cost_per_approved_pair(filters=only_x)] == ["model-x"]


def test_the_date_range_filters_decisions_by_when_they_were_made(seeded):
    last_week = timezone.now() - dt.timedelta(days=7)
    ReviewDecision.objects.filter(reviewer=seeded.r2).update(created_at=last_week)
    today = timezone.localdate()
    recent = DashboardFilters(date_from=today - dt.timedelta(days=1), date_to=today)
    assert [row["reviewer"] for row in selectors.reviewer_throughput(filters=recent)] == ["r1"]
    assert selectors.reject_reasons(filters=recent) == []
    earlier = DashboardFilters(date_to=today - dt.timedelta(days=2))
    assert [row["reviewer"] for row in selectors.reviewer_throughput(filters=earlier)] == ["r2"]


# --- Approval stores the edit burden ------------------------------------------------------------


def test_approving_a_pair_through_the_service_stores_its_edit_burden(clinician, django_capture_on_commit_callbacks):
    from review import services
    from tests.review.review_fixtures import case_in_review, seen

    case = case_in_review()
    with django_capture_on_commit_callbacks(execute=True):
        services.review_decision_record(
            case=case, reviewer=clinician, action="approve", seen=seen(case), opened_at=None
        )
    parts = dict(EditBurden.objects.filter(case=case).values_list("part", "distance"))
    assert parts == {"subjective": 0, "objective": 0, "assessment": 0, "plan": 0, "dialogue": 0}


# --- Query counts -------------------------------------------------------------------------------


def _more_cases(seeded, count):
    """`count` more cases, each with its own code (in a chapter of its own), batch and model,
    and its own two reviewers: the groups of every figure grow with the cases."""
    for n in range(count):
        code = IcdCodeFactory(code=f"B{n:02d}.0", chapter=str(30 + n), chapter_title=f"Chapter {30 + n}",
                              block=f"B{n:02d}-B{n:02d}", frequency=n + 1)  # fmt: skip
        batch = GenerationBatchFactory(model=f"model-{n}")
        case, versions = produced_case(batch=batch, code=code, status="approved", slot=1)
        first, second = ClinicianFactory(username=f"extra-a{n}"), ClinicianFactory(username=f"extra-b{n}")
        decision(case, first, "approve", n, versions)
        decision(case, second, "reject" if n % 2 else "approve", n + 7, versions, reason="other", comment="x")
        EditBurden.objects.create(
            case=case, part="plan", generated_version=versions["note_version"],
            approved_version=versions["note_version"], generated_words=13, approved_words=13, distance=n % 3,
        )  # fmt: skip


def _queries(figure, user):
    with CaptureQueriesContext(connection) as captured:
        figures.figure_rows(figure, filters=ALL, viewer=user)
    return len(captured)


def test_no_figure_takes_more_queries_for_many_cases_than_for_few(seeded, admin_member):
    # 5 cases, 2 reviewers, 2 models, 2 chapters; then 17 cases, 26 reviewers, 14 models, 14 chapters.
    _queries(figures.FIGURES[0], admin_member)  # loads the user's permissions once
    few = {figure.slug: _queries(figure, admin_member) for figure in figures.FIGURES}
    _more_cases(seeded, 12)
    assert {figure.slug: _queries(figure, admin_member) for figure in figures.FIGURES} == few


# --- Views ----------------------------------------------------------------------------------------


def test_an_admin_sees_every_figure(seeded, admin_member_client):
    response = admin_member_client.get(reverse("review:dashboards"))
    assert response.status_code == 200
    for figure in figures.FIGURES:
        assert reverse("review:dashboard-figure", args=[figure.slug]) in response.content.decode()


def test_a_figure_page_shows_its_chart_data_and_table(seeded, admin_member_client):
    response = admin_member_client.get(reverse("review:dashboard-figure", args=["funnel"]))
    assert response.status_code == 200
    assert response.context["chart"]["datasets"][0]["data"] == [4.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert 'id="chart-funnel"' in response.content.decode()
    assert "Approved after reviewer edits" in response.content.decode()


def test_the_htmx_request_gets_only_the_panel(seeded, admin_member_client):
    response = admin_member_client.get(
        reverse("review:dashboard-figure", args=["funnel"]), headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card dashboard-figure" id="figure-funnel"')
    assert "<html" not in body


def test_the_csv_has_the_rows_of_the_table(seeded, admin_member_client):
    url = reverse("review:dashboard-csv", args=["coverage-chapter"])
    response = admin_member_client.get(url, {"batch": seeded.batch_x.pk})
    assert response["Content-Disposition"] == 'attachment; filename="coverage-chapter.csv"'
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0][:5] == ["Chapter", "Title", "Planned", "Generated", "Approved"]
    assert [line[:5] for line in lines[1:]] == [["4", "Endocrine", "3", "3", "2"], ["10", "Respiratory", "0", "0", "0"]]
    assert (Decimal(lines[1][6]), Decimal(lines[1][7])) == (1, Decimal("0.8"))  # shares as fractions


def test_a_clinician_sees_only_their_own_throughput(seeded):
    from django.test import Client

    client = Client()
    client.force_login(seeded.r2)
    index = client.get(reverse("review:dashboards"))
    assert index.status_code == 200
    assert reverse("review:dashboard-figure", args=["funnel"]) not in index.content.decode()
    assert client.get(reverse("review:dashboard-figure", args=["funnel"])).status_code == 403
    assert client.get(reverse("review:dashboard-csv", args=["cost"])).status_code == 403
    page = client.get(reverse("review:dashboard-figure", args=["throughput"]))
    assert [row["reviewer"] for row in page.context["rows"]] == ["r2"]
    lines = list(
        csv.reader(io.StringIO(client.get(reverse("review:dashboard-csv", args=["throughput"])).content.decode()))
    )
    assert [line[0] for line in lines[1:]] == ["r2"]


def test_a_bad_date_is_refused_with_a_message(seeded, admin_member_client):
    response = admin_member_client.get(reverse("review:dashboard-figure", args=["funnel"]), {"from": "31/12/2026"})
    assert response.status_code == 400
    assert "is not a date (YYYY-MM-DD)" in response.content.decode()
    csv_response = admin_member_client.get(reverse("review:dashboard-csv", args=["funnel"]), {"to": "x"})
    assert csv_response.status_code == 400


def test_an_unknown_figure_is_404(admin_member_client):
    assert admin_member_client.get(reverse("review:dashboard-figure", args=["nothing"])).status_code == 404


def test_the_batch_page_links_to_its_queues_and_dashboards(admin_member_client):
    from tests.factories import GenerationBatchFactory

    batch = GenerationBatchFactory()
    body = admin_member_client.get(reverse("generation:batch-detail", args=[batch.pk])).content.decode()
    for queue in ("scenario", "note", "dialogue", "pair", "adjudication"):
        assert f"{reverse('review:queue', args=[queue])}?batch={batch.pk}" in body
    assert f"{reverse('review:dashboards')}?batch={batch.pk}" in body
    assert f"{reverse('review:dashboard-figure', args=['funnel'])}?batch={batch.pk}" in body


def test_pairs_approved_before_the_dashboards_are_measured_by_the_command(seeded):
    from django.core.management import call_command

    EditBurden.objects.all().delete()
    out = io.StringIO()
    call_command("measure_edit_burden", stdout=out)
    assert "2 approved pair(s)" in out.getvalue()  # c1 and c2
    assert EditBurden.objects.get(case=seeded.cases["c2"], part="plan").distance == 3
    call_command("measure_edit_burden", stdout=out)
    assert "0 approved pair(s)" in out.getvalue()
