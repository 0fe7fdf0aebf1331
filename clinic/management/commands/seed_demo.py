from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from clinic.demo import DEMO_PASSWORD, STAFF


class Command(BaseCommand):
    help = "Create or top up the demo clinic (slug 'demo'). Safe to run again: nothing is duplicated."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow in production (never on real data).")

    def handle(self, *args, force=False, **options):
        if settings.PRODUCTION and not force:
            raise CommandError("seed_demo refuses to run with DJANGO_ENV=production (use --force on a demo server).")
        call_command("load_catalogs", stdout=self.stdout)
        # Apps seed in INSTALLED_APPS order: the clinic first, then what depends on it.
        for config in apps.get_app_configs():
            seeder = getattr(config, "seed_demo", None)
            if seeder:
                seeder(self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo clinic ready."))
        self.stdout.write(f"Demo logins (password '{DEMO_PASSWORD}'):")
        for username, first, last, role, *_ in STAFF:
            self.stdout.write(f"  {username:10} {role.label}: {first} {last}")
