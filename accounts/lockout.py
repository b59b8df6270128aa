"""
The login throttle: django-axes' database handler with a limit per parameter.

axes counts failures per lockout parameter (here the pair username and IP,
the IP alone, the username alone) but compares them all with one limit, and
its reset on success deletes every failure of the IP and every failure of
the username. Neither setting can say "the pair locks at 5, the IP and the
username alone at 20", nor "a success forgives only its own failures"; these
two methods do.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_parameters, get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def limits() -> dict[frozenset[str], int]:
    """Return the failure limit of each lockout parameter, by its field names."""
    return {
        frozenset({"username", "ip_address"}): settings.LOGIN_FAILURE_LIMIT,
        frozenset({"ip_address"}): settings.LOGIN_IP_FAILURE_LIMIT,
        frozenset({"username"}): settings.LOGIN_USERNAME_FAILURE_LIMIT,
    }


class LoginThrottle(AxesDatabaseHandler):  # type: ignore[misc]
    """Lock each lockout parameter at its own limit; reset only the pair on success."""

    def get_failures(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        """
        Return the failures of the parameter nearest its limit, in pair-limit units.

        axes locks when this reaches AXES_FAILURE_LIMIT, the pair's limit: a
        parameter with limit L and n failures counts n * pair_limit // L,
        which reaches the pair's limit exactly when n reaches L.
        """
        by_fields = limits()
        pair_limit = settings.LOGIN_FAILURE_LIMIT
        username = get_client_username(request, credentials)
        # get_user_attempts() holds one queryset per parameter, in this order.
        parameters = get_client_parameters(
            username,
            request.axes_ip_address,  # type: ignore[attr-defined]
            request.axes_user_agent,  # type: ignore[attr-defined]
            request,
            credentials,
        )
        scaled = [0]
        for fields, attempts in zip(
            parameters, self.get_user_attempts(request, credentials), strict=True
        ):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            scaled.append(failures * pair_limit // by_fields[frozenset(fields)])
        return max(scaled)

    def reset_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        """Forget the failures of this username from this IP, and no others."""
        count, _ = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
        ).delete()
        return int(count)
