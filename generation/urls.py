from django.urls import path

from generation import views

app_name = "generation"

urlpatterns = [
    path("batches/new/", views.batch_launch, name="batch-launch"),
    path("batches/<int:batch_id>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:batch_id>/cancel/", views.batch_cancel_view, name="batch-cancel"),
    path("batches/<int:batch_id>/retry-failed/", views.batch_retry_failed_view, name="batch-retry-failed"),
]
