from django.core.management.base import BaseCommand, CommandError

from clinic.api.authentication import ALL_SCOPES
from clinic.models import Clinic
from clinic.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an integration and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", required=True, help="Clinic slug, e.g. demo.")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help=f"Comma-separated, or 'all'. Known: {', '.join(ALL_SCOPES)}"
        )

    def handle(self, *args, clinic, name, scopes, **options):
        found = Clinic.objects.filter(slug=clinic).first()
        if found is None:
            raise CommandError(f"No clinic with slug {clinic!r}.")
        wanted = list(ALL_SCOPES) if scopes.strip() == "all" else [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            key, raw = api_key_create(clinic=found, name=name, scopes=wanted)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(raw)
        self.stderr.write(f"Key {key.prefix}… for {found.slug}: {', '.join(key.scopes)}. Store it now; it is not kept.")
