from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.review_home, name="home"),
    path("queue/<slug:queue>/", views.queue_list, name="queue"),
    path("queue/<slug:queue>/assign/", views.queue_assign, name="queue-assign"),
    path("case/<int:case_id>/", views.item, name="item"),
    path("case/<int:case_id>/decide/", views.decide, name="decide"),
    path("case/<int:case_id>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("case/<int:case_id>/regenerate/", views.regenerate, name="regenerate"),
    path("case/<int:case_id>/regeneration-status/", views.regeneration_status, name="regeneration-status"),
    path("case/<int:case_id>/assign/", views.assign, name="assign"),
    path("case/<int:case_id>/code/", views.code_assign, name="code-assign"),
    path("case/<int:case_id>/note/<slug:section>/edit/", views.note_section_edit, name="note-section-edit"),
    path("case/<int:case_id>/turn/<int:index>/<slug:operation>/", views.dialogue_turn_edit, name="turn-edit"),
    path("case/<int:case_id>/turn/<int:index>/<slug:operation>/apply/", views.dialogue_turn_move, name="turn-move"),
    path("case/<int:case_id>/history/", views.history, name="history"),
    path("case/<int:case_id>/provenance/", views.provenance, name="provenance"),
    path("agreement/", views.agreement_report, name="agreement"),
    path("dashboards/", views.dashboard_index, name="dashboards"),
    path("dashboards/<slug:slug>/", views.dashboard_figure, name="dashboard-figure"),
    path("dashboards/<slug:slug>/csv/", views.dashboard_csv, name="dashboard-csv"),
    path("survey/", views.survey, name="survey"),
    path("survey/results/", views.survey_results, name="survey-results"),
    path("survey/publish/", views.survey_publish, name="survey-publish"),
    path("guidelines/", views.guideline_list, name="guidelines"),
    path("guidelines/<int:guideline_id>/edit/", views.guideline_edit, name="guideline-edit"),
]
