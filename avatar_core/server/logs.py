"""The server's log: one line per record, and no credential in any of them, whatever a
library logs (openai's `httpx2` logs every request's full address at INFO, credentials
in the URL included; with OPENAI_LOG=debug it logs request options too).

Every handler gets a filter that replaces the configured secrets and any `user:password@`
in a URL, in the message and in a traceback, before the record is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

HIDDEN = "(hidden)"
URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@]+(?::[^/\s@]*)?@")
CHATTY = ("httpx", "httpx2", "httpcore", "httpcore2", "openai")  # request-by-request at INFO/DEBUG
MIN_SECRET_CHARS = 4  # shorter values would blank ordinary words


class RedactCredentials(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, HIDDEN)
        return URL_CREDENTIALS.sub(f"{HIDDEN}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info:  # the traceback is text like any other: format it now, redacted
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure_logging(secrets: Iterable[str]) -> None:
    # force: a library may have configured the root logger at import (openai does with OPENAI_LOG)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    redact = RedactCredentials(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
