from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import services, session_data
from redis_hash_sessions import users
from redis_hash_sessions.exceptions import SessionStoreUnavailable


class Command(BaseCommand):
    help = (
        "Count, list and end the sessions stored in Redis. Give key hashes as "
        "--key-hash=H: one may start with '-'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser(
            "count", help="Count this site's sessions (SCAN; never blocks Redis)."
        )
        listing = actions.add_parser("list", help="List one user's sessions.")
        listing.add_argument("--user", required=True, help="the username")
        revoke = actions.add_parser("revoke", help="End sessions at once.")
        target = revoke.add_mutually_exclusive_group(required=True)
        target.add_argument("--user", help="end this user's sessions")
        # A key hash may start with "-": pass it as --key-hash=H.
        target.add_argument("--key-hash", help="end the one session with this key hash")
        revoke.add_argument(
            "--except-key-hash",
            action="append",
            default=[],
            help="with --user: keep this session, given as --except-key-hash=H "
            "(may be repeated)",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            self._act(action, options)
        except SessionStoreUnavailable as exc:
            raise CommandError(str(exc)) from exc

    def _act(self, action: str, options: dict[str, Any]) -> None:
        if action == "count":
            self.stdout.write(str(users.count_sessions()))
        elif action == "list":
            self._list(self._user_id(options["user"]))
        elif options["key_hash"] is not None:
            self._revoke_one(options["key_hash"])
        else:
            user_id = self._user_id(options["user"])
            ended = users.end_sessions(user_id, keep=options["except_key_hash"])
            self.stdout.write(f"Ended {ended} session(s) of {options['user']}.")

    def _user_id(self, username: str) -> Any:
        user_model = get_user_model()
        user = user_model._default_manager.filter(
            **{user_model.USERNAME_FIELD: username}
        ).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        return user.pk

    def _list(self, user_id: Any) -> None:
        rows = [("KEY HASH", "DEVICE", "IP", "SIGNED IN", "LAST ACTIVE", "EXPIRES")]
        for entry in users.sessions_of(user_id, fields=services.SESSION_FIELDS):
            data = entry.data
            rows.append(
                (
                    entry.key_hash,
                    str(data.get(session_data.DEVICE, "-")),
                    str(data.get(session_data.IP, "-")),
                    str(data.get(session_data.SIGNED_IN_AT, "-"))[:19],
                    str(data.get(session_data.LAST_ACTIVE, "-")),
                    entry.expires_at.isoformat(timespec="seconds"),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(
                    cell.ljust(w) for cell, w in zip(row, widths, strict=True)
                ).rstrip()
            )

    def _revoke_one(self, key_hash: str) -> None:
        user_id = users.user_of(key_hash)
        # None ended: the session ended (or changed) since user_of() read it.
        if user_id is None or not users.end_sessions(user_id, only=[key_hash]):
            raise CommandError(f"No logged-in session has the key hash {key_hash!r}.")
        self.stdout.write(f"Ended session {key_hash}.")
