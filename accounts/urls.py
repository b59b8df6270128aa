from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("visits/", views.visits, name="visits"),
    path("logout/", views.logout, name="logout"),
]
