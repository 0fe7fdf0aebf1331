"""Log records as JSON lines: time, level, logger, message, the record's extra fields, and
the exception's type and traceback. Imported by the logging configuration, before Django's
apps are loaded: it imports nothing of the project."""

from __future__ import annotations

import datetime as dt
import json
import logging

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


# Extras Django adds that name the raw path or hold the request itself.
_NEVER = {"request"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "django.request" and isinstance(record.args, tuple) and record.args:
            # "Not Found: <path>": paths of intake and calendar links are secrets; clinic.request
            # has already logged the route that answered.
            entry["message"] = str(record.args[0])
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _NEVER and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
