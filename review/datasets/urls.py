from django.urls import path

from review import views_datasets

app_name = "datasets"

urlpatterns = [
    path("exports/", views_datasets.export_list, name="exports"),
    path("exports/<int:pk>/", views_datasets.export_detail, name="export_detail"),
    path("exports/<int:pk>/download/", views_datasets.export_download, name="export_download"),
    path("imports/", views_datasets.import_list, name="imports"),
    path("imports/<int:pk>/", views_datasets.import_detail, name="import_detail"),
]
