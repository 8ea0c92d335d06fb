from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import create_token, revoke
from jobs.management.base import BlobForgeCommand


class Command(BlobForgeCommand):
    help = "API tokens for scripts: create (prints the token once), list, revoke."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("action", choices=["create", "list", "revoke"])
        parser.add_argument("--name", help="what the token is for (create), or the token's name/prefix (revoke)")
        parser.add_argument("--scopes", default="read", help="comma-separated: read,submit,operate,admin")
        parser.add_argument("--expires-days", type=int, help="expire after this many days")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "list":
            rows = [
                {
                    "name": t.name,
                    "prefix": t.prefix,
                    "scopes": t.scopes,
                    "expires_at": t.expires_at,
                    "revoked": t.revoked_at is not None,
                    "last_used_at": t.last_used_at,
                }
                for t in ApiToken.objects.all()
            ]
            text = "\n".join(
                f"{r['prefix']}…  {r['name']:<20} {','.join(r['scopes']):<22} {'revoked' if r['revoked'] else 'active'}"
                for r in rows
            )
            return self.emit(options, {"tokens": rows}, text or "no tokens")
        if not options["name"]:
            raise CommandError(f"tokens {action} needs --name")
        if action == "create":
            expires = timezone.now() + timedelta(days=options["expires_days"]) if options["expires_days"] else None
            try:
                token, plain = create_token(
                    options["name"], [s.strip() for s in options["scopes"].split(",") if s.strip()], expires_at=expires
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            return self.emit(
                options,
                {"token": plain, "name": token.name, "scopes": token.scopes, "expires_at": token.expires_at},
                f"token {token.name} ({','.join(token.scopes)}), shown this once:\n\n  {plain}\n",
            )
        matches = ApiToken.objects.filter(name=options["name"]) | ApiToken.objects.filter(prefix=options["name"])
        if not matches.exists():
            raise CommandError(f"no token named {options['name']!r}")
        for token in matches:
            revoke(token)
        self.emit(options, {"revoked": matches.count()}, f"revoked {matches.count()} token(s)")
