from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the demo user from DEMO_USERNAME and DEMO_PASSWORD, or reset it."

    def handle(self, *args: Any, **options: Any) -> None:
        username, password = settings.DEMO_USERNAME, settings.DEMO_PASSWORD
        if not username or not password:
            raise CommandError(
                "Set DEMO_USERNAME and DEMO_PASSWORD (with DJANGO_DEBUG=1 they "
                "default to admin / secret)."
            )
        user_model = get_user_model()
        lookup = {user_model.USERNAME_FIELD: username}
        user = user_model._default_manager.filter(**lookup).first()
        if user is None:
            user = user_model(**lookup)
            verb = "Created"
        elif user.check_password(password) and user.is_active:
            # Hashing it again would change the session auth hash and log out
            # everyone signed in as the demo user.
            self.stdout.write(f"Demo user {username!r} is ready.")
            return
        else:
            verb = "Updated"
        user.set_password(password)
        user.is_active = True
        user.save()
        self.stdout.write(self.style.SUCCESS(f"{verb} demo user {username!r}."))
