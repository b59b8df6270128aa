from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("sessionsite.urls")),
    path("test/set/<str:name>/", views.set_key, name="test-set"),
    path("test/read/", views.read_session, name="test-read"),
    path("test/fail/", views.fail_after_write, name="test-fail"),
    path("test/paused-write/", views.paused_write, name="test-paused-write"),
]
