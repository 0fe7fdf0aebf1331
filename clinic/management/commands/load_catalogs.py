from django.apps import apps
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load or refresh the shared catalogs (idempotent). Each app with a `load_catalogs` hook takes part."

    def handle(self, *args, **options):
        for config in apps.get_app_configs():
            loader = getattr(config, "load_catalogs", None)
            if loader:
                loader(self.stdout)
