"""Each server gets the view made for it: sync under WSGI, async under ASGI."""

from __future__ import annotations

import pytest
from django.test import AsyncClient
from django.urls import reverse

from accounts import views
from sessionsite.twins import async_urlconf, twin_of

JSON = {"accept": "application/json"}


@pytest.mark.django_db
def test_a_sync_request_is_served_by_the_sync_view(client):
    response = client.get("/visits/", headers=JSON)
    assert response.resolver_match.func is views.visits


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis", "close_async_db")
async def test_an_async_request_is_served_by_the_twin():
    response = await AsyncClient().get("/visits/", headers=JSON)
    assert response.resolver_match.func is views.avisits


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis", "close_async_db")
async def test_a_view_without_a_twin_is_served_as_it_is():
    response = await AsyncClient().get("/healthz")
    assert response.resolver_match.func.__name__ == "healthz"


def test_the_twins_keep_the_names_of_the_views(settings):
    twins = async_urlconf(settings.ROOT_URLCONF)
    assert reverse("dashboard", urlconf=twins) == reverse("dashboard")
    assert reverse("admin:index", urlconf=twins) == reverse("admin:index")


def test_a_twin_must_be_async():
    def view(request):
        return None

    with pytest.raises(TypeError, match=r"^The twin of view must be async\.$"):
        twin_of(view)(view)
