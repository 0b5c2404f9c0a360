"""Configuration: ``pkgbuilder.toml`` (or the seed's ``production/configs/build-env.json``),
then environment variables, then CLI flags.

``BuildSettings`` is the serialisable, secret-free part that travels in workflow inputs.
Secrets (ANTHROPIC_API_KEY, NPM_TOKEN, MCP tokens) are never part of it: activities read
them from their own environment when they need them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from pkgbuilder.errors import UserError
from pkgbuilder.models.common import DEFAULT_COVERAGE_THRESHOLDS, Category, Model
from pkgbuilder.util.state_dirs import ensure_state_dir
from pkgbuilder.util.urls import strip_userinfo

DEFAULT_TASK_QUEUE = "package-builder"
DEFAULT_LLM_TASK_QUEUE = "package-builder-llm"
DEFAULT_ADDRESS = "localhost:7233"

# Keys that must never be read into a model; found in a config file they are ignored with a
# warning (the seed's build-env.json carried npmToken in plain text).
# Matched on the lower-cased key without separators: npmToken, _authToken, apiKey,
# password... but not tokenBudgets, tokensPerMinute or maxOutputTokens.
# Also anything ending in auth or key (npmAuth, _auth, anthropicKey), in every section.
_SECRET_KEY = re.compile(r"(token|password|passwd|secret|apikey|credentials?|auth|key)$")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key.lower().replace("_", "").replace("-", "")))


class ConfigError(UserError):
    """A configuration error (one clear sentence, exit code 2)."""


class TemporalSettings(Model):
    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    llm_task_queue: str = DEFAULT_LLM_TASK_QUEUE
    # The package steps of `build --fleet` suites (served by `worker --fleet`); default
    # "<taskQueue>-fleet".
    fleet_task_queue: str | None = None

    @property
    def fleet_queue(self) -> str:
        return self.fleet_task_queue or f"{self.task_queue}-fleet"


class TestingSettings(Model):
    enable_coverage: bool = True
    # Overrides every category threshold when set (the seed's single number).
    min_coverage_percent: float | None = None
    coverage_thresholds: dict[Category, float] = Field(
        default_factory=lambda: dict(DEFAULT_COVERAGE_THRESHOLDS)
    )
    # When False, test failures are recorded but do not fail the package.
    fail_on_error: bool = True
    # Fail the coverage check when tests ran but produced no coverage report.
    require_coverage_report: bool = False

    def threshold_for(self, category: Category) -> float:
        if self.min_coverage_percent is not None:
            return self.min_coverage_percent
        return self.coverage_thresholds.get(category, DEFAULT_COVERAGE_THRESHOLDS[category])


class QualitySettings(Model):
    # Per-category argv lists, run in the package directory, e.g.
    # {"core": [["npm", "run", "lint"], ["npm", "run", "typecheck"]]}.
    commands: dict[str, list[list[str]]] = Field(default_factory=dict)
    # Scripts run when the package defines them and no explicit command is configured.
    default_scripts: list[str] = Field(default_factory=lambda: ["lint", "typecheck"])


class PublishingSettings(Model):
    enabled: bool = False
    dry_run: bool = False
    require_tests: bool = True
    require_clean_working_directory: bool = False
    access: str = "public"
    tag: str = "latest"
    # Bound on one pack or `npm publish` command.
    timeout_seconds: int = Field(600, gt=0)

    @field_validator("access")
    @classmethod
    def _access(cls, v: str) -> str:
        if v not in ("public", "restricted"):
            raise ValueError("publishing.access must be 'public' or 'restricted'")
        return v


class VerifySettings(Model):
    # Suite-level command run in the workspace root during VERIFY (argv list).
    command: list[str] | None = None
    timeout_seconds: int = Field(1800, gt=0)


class TimeoutSettings(Model):
    # Every timeout is a positive number of seconds: a zero or negative one would reach
    # Temporal as an invalid duration and park the build forever.
    install_seconds: int = Field(1800, gt=0)
    build_seconds: int = Field(1800, gt=0)
    test_seconds: int = Field(1800, gt=0)
    quality_seconds: int = Field(900, gt=0)
    heartbeat_seconds: int = Field(30, gt=0)


class LLMSettings(Model):
    model: str = "claude-sonnet-5-5"
    # Per-purpose overrides, e.g. {"fix": "...", "generation": "..."}.
    models: dict[str, str] = Field(default_factory=dict)
    max_attempts: int = Field(5, ge=1)
    tokens_per_minute: int = Field(8000, gt=0)
    max_output_tokens_cap: int = Field(32000, gt=0)
    # Send each phase's temperature (in the request body when the SDK has no parameter for
    # it); turn off for a model that rejects sampling parameters.
    send_temperature: bool = True
    request_timeout_seconds: float = Field(300.0, gt=0)
    # The tokens-per-minute budget is counted over this sliding window; only tests shorten it.
    rate_window_seconds: float = Field(60.0, gt=0)
    # Temporal retry backoff of model calls (a server's retry-after wins when it sends one).
    retry_initial_interval_seconds: float = Field(2.0, gt=0)
    retry_max_interval_seconds: float = Field(60.0, gt=0)
    # A retry-after longer than this is clamped (a misbehaving proxy must not park a build).
    max_retry_after_seconds: float = Field(600.0, ge=0)
    # USD per million tokens: input, output, cache_write, cache_read.
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)

    def model_for(self, purpose: str) -> str:
        return self.models.get(purpose, self.model)


class FixSettings(Model):
    enabled: bool = True
    max_attempts: int = Field(3, ge=0, le=10)
    max_output_tokens: int = Field(8000, gt=0)
    temperature: float = Field(0.2, ge=0, le=1)
    # Caps on one model answer's file operations (LLM output is hostile input).
    max_files_per_response: int = Field(50, gt=0)
    max_file_bytes: int = Field(512 * 1024, gt=0)
    max_response_bytes: int = Field(4 * 1024 * 1024, gt=0)
    # Package files sent with a fix request: total budget and per-file cap (bytes).
    context_budget_bytes: int = Field(60_000, gt=0)
    context_file_max_bytes: int = Field(24_000, gt=0)
    # Run scripts the model changed without a sandbox when none works on the worker.
    allow_unsandboxed: bool = False


class GraphSettings(Model):
    """How packages wait for each other (see docs/workspaces.md, "Failure policy")."""

    # What a dependent needs from a workspace dependency: "build" (Turborepo's default:
    # the dependency built) or "tests" (it built and its tests passed). Unset: "tests"
    # when turbo.json makes the test task depend on ^test, else "build".
    dependents_need: str | None = None
    # Dependencies whose tests gate their dependents even under "build".
    tests_gate: list[str] = Field(default_factory=list)
    # Extra edges the package.json files do not declare: {"@x/app": ["@x/codegen"]}.
    depends_on: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("dependents_need")
    @classmethod
    def _need(cls, v: str | None) -> str | None:
        if v not in (None, "build", "tests"):
            raise ValueError("graph.dependentsNeed must be 'build' or 'tests'")
        return v


class RemoteCacheSettings(Model):
    """A Turborepo-compatible remote cache. The token is never here: the activity that talks
    to the server reads ``REMOTE_CACHE_TOKEN`` (or ``TURBO_TOKEN``) from its environment."""

    url: str | None = None  # also REMOTE_CACHE_URL / TURBO_API
    team_id: str | None = None  # sent as ?teamId=
    slug: str | None = None  # sent as ?slug= (TURBO_TEAM)
    read: bool = True
    write: bool = True
    timeout_seconds: float = 5.0


class CacheSettings(Model):
    """Content-addressed build cache (docs/cache.md)."""

    enabled: bool = True
    force: bool = False  # --force: run every step, still store the results
    local_read: bool = True
    local_write: bool = True
    dir: str | None = None  # default $PKGBUILDER_HOME/cache
    max_size_mb: int = 2048
    max_artifact_mb: int = 512
    # Keys: a package name, a category or "*"; the first that matches wins.
    outputs: dict[str, list[str]] = Field(default_factory=dict)
    inputs: dict[str, list[str]] = Field(default_factory=dict)
    test_outputs: dict[str, list[str]] = Field(default_factory=dict)
    env: list[str] = Field(default_factory=list)  # variables whose values are hashed
    global_inputs: list[str] = Field(default_factory=list)  # workspace-root globs
    remote: RemoteCacheSettings = Field(default_factory=RemoteCacheSettings)


class BuildSettings(Model):
    """Everything a build needs to know, resolved once by the CLI; no secrets."""

    registry: str | None = None
    max_concurrent_builds: int = 4
    # "direct": run package.json scripts like pnpm does (sh -c, pre/post hooks, .bin on PATH)
    # without the package manager's start-up cost; "package-manager": npm/yarn/pnpm run.
    script_runner: str = "direct"
    reports_root: str | None = None  # default <workspace>/production/reports
    suite_package: str | None = None
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    publishing: PublishingSettings = Field(default_factory=PublishingSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    fix: FixSettings = Field(default_factory=FixSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    # Other sections (turnBasedGeneration, orchestrator, ...) are kept verbatim and validated
    # by the feature that owns them.
    turn_based_generation: dict[str, Any] = Field(default_factory=dict)
    orchestrator: dict[str, Any] = Field(default_factory=dict)

    @field_validator("registry")
    @classmethod
    def _no_userinfo(cls, v: str | None) -> str | None:
        return strip_userinfo(v) if v else v

    @field_validator("turn_based_generation", "orchestrator")
    @classmethod
    def _no_secret_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Verbatim sections travel in workflow inputs whatever their source (file,
        # environment, overrides): the secret-key rule applies to them here too.
        stripped: dict[str, Any] = _strip_secrets(v, [])
        return stripped

    @field_validator("script_runner")
    @classmethod
    def _runner(cls, v: str) -> str:
        if v not in ("direct", "package-manager"):
            raise ValueError("scriptRunner must be 'direct' or 'package-manager'")
        return v

    @field_validator("max_concurrent_builds")
    @classmethod
    def _conc(cls, v: int) -> int:
        if not 1 <= v <= 64:
            raise ValueError("maxConcurrentBuilds must be between 1 and 64")
        return v


CONFIG_FILE_NAMES = ("pkgbuilder.toml", "production/configs/build-env.json")


def find_config_file(workspace: Path) -> Path | None:
    for name in CONFIG_FILE_NAMES:
        candidate = workspace / name
        if candidate.is_file():
            return candidate
    return None


def _strip_secrets(data: Any, warnings: list[str], where: str = "") -> Any:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if isinstance(k, str) and is_secret_key(k):
                warnings.append(
                    f"ignored secret '{where}{k}' in the config file: "
                    "put it in the environment instead (e.g. NPM_TOKEN)"
                )
                continue
            out[k] = _strip_secrets(v, warnings, f"{where}{k}.")
        return out
    return data


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path}: {e.strerror}.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
            f"{e.start}); save it as UTF-8."
        ) from e
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        data = json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"Config file {path} is not valid: {e}.") from e
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold an object at the top level.")
    # The seed's build-env.json spells the registry npmRegistry, and names the workspace
    # (which pkgbuilder takes from its WORKSPACE argument instead).
    if "npmRegistry" in data and "registry" not in data:
        data["registry"] = data.pop("npmRegistry")
    data.pop("workspaceRoot", None)
    return data


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    over: dict[str, Any] = {}
    temporal: dict[str, Any] = {}
    if v := env.get("TEMPORAL_ADDRESS"):
        temporal["address"] = v
    if v := env.get("TEMPORAL_NAMESPACE"):
        temporal["namespace"] = v
    if v := env.get("TEMPORAL_TASK_QUEUE"):
        temporal["taskQueue"] = v
    if v := env.get("PKGBUILDER_LLM_TASK_QUEUE"):
        temporal["llmTaskQueue"] = v
    if temporal:
        over["temporal"] = temporal
    if v := env.get("NPM_REGISTRY"):
        over["registry"] = v
    if v := env.get("PKGBUILDER_REPORTS_ROOT"):
        over["reportsRoot"] = v
    if v := env.get("MAX_CONCURRENT_BUILDS"):
        over["maxConcurrentBuilds"] = v
    llm: dict[str, Any] = {}
    if v := env.get("PKGBUILDER_MODEL") or env.get("CLAUDE_MODEL"):
        llm["model"] = v
    if v := env.get("PKGBUILDER_TOKENS_PER_MINUTE"):
        llm["tokensPerMinute"] = v
    if llm:
        over["llm"] = llm
    # turnBasedGeneration (the operator guide's variables; validated by phases/config.py)
    tbg: dict[str, Any] = {}
    if v := env.get("ENABLE_TURN_BASED_GENERATION"):
        tbg["enabled"] = v
    if v := env.get("GENERATION_STATE_DIR"):
        tbg["stateDir"] = v
    if tbg:
        over["turnBasedGeneration"] = tbg
    remote: dict[str, Any] = {}
    if v := env.get("REMOTE_CACHE_URL") or env.get("TURBO_API"):
        remote["url"] = v
    if v := env.get("REMOTE_CACHE_TEAM") or env.get("TURBO_TEAM"):
        remote["slug"] = v
    if v := env.get("TURBO_TEAMID"):
        remote["teamId"] = v
    if remote:
        over["cache"] = {"remote": remote}
    return over


# Sections kept verbatim in BuildSettings and validated by the feature that owns them; their
# models are imported lazily (they import this module).
_FEATURE_SECTIONS = ("turnBasedGeneration", "orchestrator")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field typed ``M`` or ``M | None``, else None (dicts, lists...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _nested_model(a))]
        return models[0] if len(models) == 1 else None
    return None


def unknown_key_errors(data: dict[str, Any], model: type[BaseModel], where: str = "") -> list[str]:
    """One sentence per key of ``data`` that ``model`` does not have, with the closest valid
    key when one is near (``maxConcurentBuilds`` -> ``maxConcurrentBuilds``)."""
    by_key: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        by_key[name] = field
        if field.alias:
            by_key[field.alias] = field
    public = sorted(f.alias or n for n, f in model.model_fields.items())
    errors: list[str] = []
    for key, value in data.items():
        known = by_key.get(key)
        if known is None:
            kind = "section" if isinstance(value, dict) else "key"
            close = difflib.get_close_matches(key, public, n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean '{where}{close[0]}'?"
            else:
                hint = f"; valid keys here: {', '.join(public)}."
            errors.append(f"Unknown configuration {kind} '{where}{key}'{hint}")
            continue
        sub = _nested_model(known.annotation)
        if sub is not None and isinstance(value, dict):
            errors.extend(unknown_key_errors(value, sub, f"{where}{key}."))
    return errors


def _feature_models() -> dict[str, type[BaseModel]]:
    from pkgbuilder.models.orchestrator import OrchestratorSettings
    from pkgbuilder.session.phases.config import TurnBasedGenerationConfig

    return {"turnBasedGeneration": TurnBasedGenerationConfig, "orchestrator": OrchestratorSettings}


def check_known_keys(data: dict[str, Any], source: Path) -> None:
    """Raise ConfigError naming the first unknown key of a config file (typos are errors,
    never silently ignored)."""
    errors = unknown_key_errors(data, BuildSettings)
    features = _feature_models()
    for section in _FEATURE_SECTIONS:
        value = data.get(section)
        if isinstance(value, dict):
            errors.extend(unknown_key_errors(value, features[section], f"{section}."))
    if errors:
        more = f" ({len(errors) - 1} more unknown)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {errors[0]}{more}")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (nested dicts merged, other values replaced)."""
    return _deep_merge(base, over)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# Maps whose keys are names (categories, packages, models) and stay as written.
KEEP_KEYS = (
    "coverageThresholds",
    "commands",
    "prices",
    "models",
    "dependsOn",
    "outputs",
    "inputs",
    "testOutputs",
)


def _camel_keys(data: Any) -> Any:
    """Accept snake_case keys in TOML by converting them to camelCase."""
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            key = k
            if "_" in k:
                head, *rest = k.split("_")
                key = head + "".join(p[:1].upper() + p[1:] for p in rest)
            # category maps keep their keys as written
            out[key] = v if key in KEEP_KEYS else (_camel_keys(v))
        return out
    return data


def load_settings(
    workspace: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> BuildSettings:
    """Resolve settings: defaults < config file < environment < CLI overrides.

    Raises:
        ConfigError: the file is unreadable or a value is invalid (one clear sentence).
    """
    env = dict(os.environ) if env is None else env
    warnings = [] if warnings is None else warnings
    data: dict[str, Any] = {}
    path = config_file
    if path is None and env.get("PKGBUILDER_CONFIG"):
        path = Path(env["PKGBUILDER_CONFIG"])
    if path is None and workspace is not None:
        path = find_config_file(workspace)
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist.")
        data = _camel_keys(_strip_secrets(_read_file(path), warnings))
        check_known_keys(data, path)
    data = _deep_merge(data, _env_overrides(env))
    if overrides:
        data = _deep_merge(data, _camel_keys(overrides))
    registry = data.get("registry")
    if (
        isinstance(registry, str)
        and strip_userinfo(registry) != registry
        and (registry != env.get("NPM_REGISTRY"))
    ):
        # From NPM_REGISTRY the worker reads them itself; from a file or a flag they are lost.
        warnings.append(
            "the registry URL's user:password part is not passed to builds: put "
            "it in NPM_REGISTRY (or a token in NPM_TOKEN) in the worker's "
            "environment"
        )
    try:
        settings = BuildSettings.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
        raise ConfigError(f"Invalid configuration value at '{loc}': {msg}.") from e
    _validate_feature_sections(settings)
    return settings


def _validate_feature_sections(settings: BuildSettings) -> None:
    """Validate the verbatim sections at load, so a bad value is a config error before any
    workflow starts (their owners validate again where they run)."""
    from pkgbuilder.models.orchestrator import OrchestratorSettings
    from pkgbuilder.session.phases.config import turn_based_config

    turn_based_config(settings)
    OrchestratorSettings.from_build_settings(settings)


HOME_DIR_NAME = ".pkgbuilder"


def _is_workspace_root(directory: Path) -> bool:
    """A monorepo root: pkgbuilder config, a pnpm workspace, or a package.json with
    ``workspaces`` (npm, yarn)."""
    if (directory / "pnpm-workspace.yaml").is_file():
        return True
    if any((directory / name).is_file() for name in CONFIG_FILE_NAMES):
        return True
    manifest = directory / "package.json"
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "workspaces" in data


def find_workspace_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that is a workspace root (as git finds
    ``.git``), else the enclosing git repository's top (a single-package repository);
    None when there is neither."""
    start = start.expanduser().resolve()
    chain = (start, *start.parents)
    for directory in chain:
        if _is_workspace_root(directory):
            return directory
    for directory in chain:
        if (directory / ".git").exists():
            return directory
    return None


def resolve_home(start: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """Where pkgbuilder keeps its state, without creating it: an explicit
    ``$PKGBUILDER_HOME``, else ``.pkgbuilder`` in the workspace root found upward from
    ``start`` (default: the current directory), else ``.pkgbuilder`` in ``start``."""
    env = dict(os.environ) if env is None else env
    if env.get("PKGBUILDER_HOME"):
        return Path(env["PKGBUILDER_HOME"]).expanduser().resolve()
    base = (start or Path.cwd()).expanduser().resolve()
    root = find_workspace_root(base)
    return (root or base) / HOME_DIR_NAME


def pkgbuilder_home(env: dict[str, str] | None = None) -> Path:
    """``$PKGBUILDER_HOME`` (see ``resolve_home``), created on demand."""
    # Its own .gitignore keeps a home inside a repository out of `git status`.
    return ensure_state_dir(resolve_home(env=env))
