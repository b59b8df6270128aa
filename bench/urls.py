from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.log_in),
    path("change/", views.read_and_change),
    path("read/", views.read_only),
    path("anonymous/", views.anonymous_visit),
    path("logout/", views.log_out_view),
]
