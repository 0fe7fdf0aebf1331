from clinic.csv_import import CsvImportCommand
from patients.csv_io import DEFAULT_COLUMNS, patients_import_csv


class Command(CsvImportCommand):
    help = (
        "Import patients from a CSV export of another system: all rows or none. "
        "--dry-run validates and reports row errors (duplicates included) without writing."
    )
    columns = DEFAULT_COLUMNS
    noun = "patient"

    def handle(self, *args, file, clinic, map, dry_run, date_format, **options):
        self.run_import(
            clinic=clinic,
            file=file,
            spec=map,
            dry_run=dry_run,
            importer=patients_import_csv,
            date_format=date_format,
        )
