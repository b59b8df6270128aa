from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
    path("login/", views.sign_in, name="login"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("visits/", views.visits, name="visits"),
    path("logout/", views.logout, name="logout"),
    path("password/", views.change_password, name="password-change"),
    path("sessions/end-others/", views.end_other_sessions, name="end-other-sessions"),
    path("sessions/<str:key_hash>/end/", views.end_session, name="end-session"),
]
