"""The environment every git command runs with."""

from __future__ import annotations

import os

from pkgbuilder.steps.shell import is_secret_env_name

# What `git rev-parse --local-env-vars` lists, less the configuration variables
# (GIT_CONFIG_COUNT & co. are how containers and CI set e.g. safe.directory): variables a hook
# or a parent git process leaves behind. Inherited, they make a command act on another
# repository (GIT_DIR, GIT_WORK_TREE), another index or other objects.
GIT_LOCAL_ENV = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_DIR",
        "GIT_GRAFT_FILE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_OBJECT_DIRECTORY",
        "GIT_PREFIX",
        "GIT_REPLACE_REF_BASE",
        "GIT_SHALLOW_FILE",
        "GIT_WORK_TREE",
    }
)

# The identity of pkgbuilder's commits where the repository (and the user) has none.
FALLBACK_IDENTITY = ("pkgbuilder", "pkgbuilder@localhost")


def git_env() -> dict[str, str]:
    """The environment of every git call: secrets scrubbed (git runs hooks, which are the
    repository's code), repository-local variables removed, and nothing that could wait for
    a person (no credential prompt, no editor)."""
    env = {
        k: v for k, v in os.environ.items() if k not in GIT_LOCAL_ENV and not is_secret_env_name(k)
    }
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_EDITOR"] = "true"  # every commit and merge passes its message; never wait
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a `status` never takes index.lock from a commit
    env["LC_ALL"] = "C"  # git's messages are parsed in a few places
    env["LANGUAGE"] = "C"
    return env


def fallback_identity_env() -> dict[str, str]:
    """Author and committer variables for :data:`FALLBACK_IDENTITY`, minus any the
    environment already sets (an explicit identity always wins)."""
    name, email = FALLBACK_IDENTITY
    wanted = {}
    for who in ("AUTHOR", "COMMITTER"):
        wanted[f"GIT_{who}_NAME"] = name
        wanted[f"GIT_{who}_EMAIL"] = email
    return {k: v for k, v in wanted.items() if k not in os.environ}
