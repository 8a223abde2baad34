from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generation import views as generation_views

urlpatterns = [
    path("", generation_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("generation/", include("generation.urls")),
    path("review/", include("review.urls")),
    path("datasets/", include("review.datasets.urls")),
]
