from django.urls import path

from generation import views

app_name = "generation"

urlpatterns = [
    path("batches/new/", views.batch_launch, name="batch-launch"),
    path("batches/new/estimate/", views.batch_estimate_view, name="batch-estimate"),
    path("batches/new/confirm/", views.batch_confirm_view, name="batch-confirm"),
    path("batches/<int:batch_id>/budget/", views.batch_budget_view, name="batch-budget"),
    path("batches/new/code-search/", views.code_search_view, name="code-search"),
    path("batches/new/code-preview/", views.code_preview_view, name="code-preview"),
    path("batches/<int:batch_id>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:batch_id>/cancel/", views.batch_cancel_view, name="batch-cancel"),
    path("batches/<int:batch_id>/retry-failed/", views.batch_retry_failed_view, name="batch-retry-failed"),
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/<int:batch_id>/pause/", views.batch_pause_view, name="batch-pause"),
    path("batches/<int:batch_id>/resume/", views.batch_resume_view, name="batch-resume"),
    path("batches/needs-attention/", views.attention_queue, name="attention"),
    path("batches/<int:batch_id>/needs-attention/", views.attention_queue, name="batch-attention"),
    path("cases/<int:case_id>/rerun-scenario/", views.case_rerun_scenario_view, name="case-rerun-scenario"),
    path("cases/<int:case_id>/reassign/", views.case_reassign_view, name="case-reassign"),
    path("cases/<int:case_id>/discard/", views.case_discard_view, name="case-discard"),
]
