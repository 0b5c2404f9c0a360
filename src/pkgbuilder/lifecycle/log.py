"""Generation-tagged log lines: ``[timestamp] [generation-name] message``.

Lines go to a sink (stderr by default) and are appended to the generation's log file
``$PKGBUILDER_HOME/generations/<name>.log`` so a later `resume` can show what happened.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from pkgbuilder.lifecycle import store
from pkgbuilder.lifecycle.naming import log_line

Log = Callable[[str | None, str], None]


def no_log(generation: str | None, message: str) -> None:
    """A :data:`Log` that drops everything (library callers that print their own output)."""


def generation_log(home: Path, sink: Callable[[str], None] | None = None) -> Log:
    """A :data:`Log` writing to ``sink`` (stderr when None) and to the generation's log file."""

    def emit(generation: str | None, message: str) -> None:
        line = log_line(generation, message)
        if sink is None:
            print(line, file=sys.stderr, flush=True)
        else:
            sink(line)
        if generation:
            with open(store.log_path(home, generation), "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    return emit
