import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from clinic.wsgi import application

__all__ = ["application"]
