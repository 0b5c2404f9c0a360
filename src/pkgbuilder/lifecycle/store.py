"""Generation records: ``$PKGBUILDER_HOME/generations/<name>.json``.

Git holds the lifecycle itself (the branch, and the `-start` tag that marks the branch point);
the record adds what git cannot hold: the base branch, the packages chosen for regeneration,
the master plan, the options of the last run and the state of every task, so that `resume`
after a crash knows which tasks are pending or stuck. Writes are atomic (temp file + rename)
and read-modify-write cycles hold an exclusive lock, because parallel task activities update
the same record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from pkgbuilder.errors import UserError
from pkgbuilder.models.lifecycle import GenerationRecord, TaskRecord
from pkgbuilder.util.atomic import write_json_atomic
from pkgbuilder.util.filelock import file_lock


def records_dir(home: Path) -> Path:
    path = home / "generations"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_path(home: Path, name: str) -> Path:
    return records_dir(home) / f"{name}.json"


def log_path(home: Path, name: str) -> Path:
    return records_dir(home) / f"{name}.log"


def load(home: Path, name: str, repo: Path | None = None) -> GenerationRecord | None:
    """The record of ``name`` (None when absent or when it belongs to another repository:
    one ``$PKGBUILDER_HOME`` may serve several repositories)."""
    path = record_path(home, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        record = GenerationRecord.model_validate_json(text)
    except ValidationError as e:
        raise UserError(
            f"The generation record {path} is corrupt ({e.error_count()} errors); "
            "restore it or delete it to start over."
        ) from e
    if repo is not None and Path(record.repo).resolve() != repo.resolve():
        return None
    return record


def save(home: Path, record: GenerationRecord) -> None:
    path = record_path(home, record.name)
    write_json_atomic(path, record.to_json_dict())


def update(
    home: Path, name: str, change: Callable[[GenerationRecord], None], repo: Path | None = None
) -> GenerationRecord:
    """Apply ``change`` to the record under an exclusive lock and save it atomically."""
    with file_lock(records_dir(home) / f".{name}.lock"):
        record = load(home, name, repo)
        if record is None:
            raise UserError(f"No record of generation '{name}' in {records_dir(home)}.")
        change(record)
        save(home, record)
        return record


def upsert_task(home: Path, name: str, task: TaskRecord) -> GenerationRecord:
    """Store ``task`` (keyed by package name) in the record of generation ``name``."""

    def change(record: GenerationRecord) -> None:
        record.tasks[task.package] = task

    return update(home, name, change)
