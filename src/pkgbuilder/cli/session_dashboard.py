"""Rendering of generation sessions: the seed's dashboard (live) and the sessions list."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pkgbuilder.session.state import GenerationContext, SessionStatus

_STATUS_STYLE = {
    SessionStatus.RUNNING: "cyan",
    SessionStatus.COMPLETED: "green",
    SessionStatus.FAILED: "red",
}


def _tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone().strftime("%H:%M:%S")


def phases_table(ctx: GenerationContext) -> Table:
    """One row per scheduled step: state, commit, files, tokens, cost, time."""
    table = Table(expand=False, header_style="bold")
    for col in ("#", "phase", "state", "commit", "files", "tokens", "cost $", "at"):
        table.add_column(
            col, justify="right" if col in ("#", "files", "tokens", "cost $") else "left"
        )
    failed = ctx.failure_recovery
    for step in ctx.phases:
        done = ctx.step_of(step.phase)
        if done is not None:
            table.add_row(
                str(step.step_number),
                step.phase.value,
                "[green]done[/]",
                (done.commit or "—")[:8],
                str(len(done.files)),
                _tokens(done.usage.total),
                f"{done.cost_usd:.4f}",
                _when(done.timestamp),
            )
            continue
        if failed is not None and failed.failed_step == step.step_number:
            state = "[red]failed[/]"
        elif ctx.status is SessionStatus.RUNNING and ctx.current_step_number == step.step_number:
            state = "[cyan]running[/]"
        else:
            state = "[dim]pending[/]"
        table.add_row(str(step.step_number), step.phase.value, state, "", "", "", "", "")
    return table


def dashboard(ctx: GenerationContext, workflow_status: str | None = None) -> RenderableType:
    """The seed's dashboard: session, package, branch, current phase/step, completed phases,
    last commit, tokens/cost, and the failure (with the resume command) if any."""
    style = _STATUS_STYLE.get(ctx.status, "white")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Session", ctx.session_id)
    head.add_row("Package", f"{ctx.package_name} ({ctx.package_path}, {ctx.category.value})")
    head.add_row("Branch", f"{ctx.branch} (from {ctx.base_branch})")
    wf = ctx.workflow_id + (f" [{workflow_status}]" if workflow_status else "")
    head.add_row("Workflow", wf)
    head.add_row("Status", f"[{style}]{ctx.status.value}[/]")
    current = ctx.current_phase.value if ctx.current_phase else "—"
    head.add_row("Current", f"{current} (step {ctx.current_step_number} of {len(ctx.phases)})")
    head.add_row("Completed", f"{len(ctx.completed_steps)} of {len(ctx.phases)} steps")
    head.add_row("Last commit", ctx.last_successful_commit or "—")
    u = ctx.total_usage
    head.add_row(
        "Tokens",
        f"{u.input_tokens} in / {u.output_tokens} out / "
        f"{u.cache_creation_input_tokens} cache write / "
        f"{u.cache_read_input_tokens} cache read",
    )
    head.add_row("Cost", f"${ctx.total_cost_usd:.4f}")
    if ctx.validation is not None:
        v = ctx.validation
        verdict = "[green]passed[/]" if v.passed else "[red]failed[/]"
        cov = f", coverage {v.coverage_percent:.1f}%" if v.coverage_percent is not None else ""
        head.add_row("Validation", f"{verdict} after {v.fix_attempts} fix attempt(s){cov}")
    if ctx.merge_commit:
        head.add_row("Merged", f"{ctx.merge_commit[:12]} into {ctx.base_branch}")
    elif ctx.merge_instructions:
        head.add_row("Merge", ctx.merge_instructions)
    parts: list[RenderableType] = [head, phases_table(ctx)]
    if ctx.failure_recovery is not None:
        f = ctx.failure_recovery
        parts.append(
            Panel(
                Text.assemble(
                    ("FAILURE DETECTED\n", "bold red"),
                    f"Step: {f.failed_step} ({f.phase.value})\nError: {f.error}\n"
                    f"Retries: {f.retry_count}\n",
                    ("Resume with: ", "bold"),
                    f"pkgbuilder resume {ctx.session_id}",
                ),
                border_style="red",
            )
        )
    return Panel(Group(*parts), title="Turn-Based Generation Dashboard", border_style=style)


def sessions_table(sessions: list[GenerationContext]) -> Table:
    table = Table(header_style="bold")
    for col in (
        "session",
        "package",
        "status",
        "step",
        "current phase",
        "branch",
        "tokens",
        "cost $",
    ):
        table.add_column(col)
    for c in sessions:
        style = _STATUS_STYLE.get(c.status, "white")
        current = c.current_phase.value if c.current_phase else "—"
        if c.failure_recovery is not None:
            current = f"{c.failure_recovery.phase.value} (failed)"
        table.add_row(
            c.session_id,
            c.package_name,
            f"[{style}]{c.status.value}[/]",
            f"{len(c.completed_steps)}/{len(c.phases)}",
            current,
            c.branch,
            _tokens(c.total_usage.total),
            f"{c.total_cost_usd:.4f}",
        )
    return table
