"""Worker console: expected activity failures in one line, tracebacks for the unexpected."""

from __future__ import annotations

import logging

from temporalio.exceptions import ApplicationError

ACTIVITY_LOGGER = "temporalio.activity"


class OneLineApplicationErrors(logging.Filter):
    """An :class:`ApplicationError` is an outcome pkgbuilder raised on purpose (a missing
    API key, a refused file operation, a failed call with a clear message): the SDK's
    "Completing activity as failed" record loses its traceback and names the error
    instead. Any other exception keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if isinstance(err, ApplicationError):
            first_line = (err.message or "").splitlines()[0] if err.message else ""
            record.msg = f"{record.getMessage()}: {err.type or 'ApplicationError'}: {first_line}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def one_line_expected_failures() -> None:
    """Install the filter on the SDK's activity logger (idempotent)."""
    logger = logging.getLogger(ACTIVITY_LOGGER)
    if not any(isinstance(f, OneLineApplicationErrors) for f in logger.filters):
        logger.addFilter(OneLineApplicationErrors())
