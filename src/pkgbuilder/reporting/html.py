"""Self-contained HTML pages a person reads after a build or a generation session.

Everything is rendered here, in Python, as HTML with inline CSS and inline SVG: no script,
no font, no stylesheet from anywhere, so a page works offline and from a file. Every value
that came from a package, a log or a model is escaped (it is hostile input).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from pkgbuilder.models.build import BuildReport
from pkgbuilder.models.session import GenerationResult
from pkgbuilder.reporting.build_reports import model_calls
from pkgbuilder.session.state import GenerationContext

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#57606a}.ok{color:#1a7f37}.bad{color:#cf222e}.warn{color:#9a6700}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #d0d7de;
text-align:left;vertical-align:top}th{background:#f6f8fa}
.meter{width:160px;height:10px;background:#eaeef2;position:relative;display:inline-block}
.meter i{position:absolute;left:0;top:0;bottom:0;background:#2da44e}
.meter.fail i{background:#cf222e}.meter b{position:absolute;top:-3px;bottom:-3px;width:2px;
background:#1f2328}
pre{white-space:pre-wrap;max-height:320px;overflow:auto;background:#f6f8fa;padding:8px}
svg text{font:11px system-ui,sans-serif}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
"""

STEP_COLOURS = {
    "wait": "#d0d7de",
    "install": "#8250df",
    "build": "#0969da",
    "test": "#1a7f37",
    "quality": "#bf8700",
    "fix": "#cf222e",
    "publish": "#6639ba",
    "cached": "#57ab5a",
    "report": "#8c959f",
}
STATUS_COLOURS = {
    "success": "#2da44e",
    "failed": "#cf222e",
    "blocked": "#d4a72c",
    "skipped": "#54aeff",
    "cached": "#57ab5a",
    "cancelled": "#8250df",
    "pending": "#afb8c1",
    "building": "#0969da",
}

LEFT = 230  # label column of the timeline (px)
SPAN_WIDTH = 860
ROW = 22


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _kind(step: str) -> str:
    """``fix-2`` → ``fix``; ``quality`` → ``quality``."""
    return step.split("-", 1)[0] if step.startswith("fix-") else step


def _secs(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
        "</body></html>\n"
    )


def _legend(items: Iterable[tuple[str, str]]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>' for n, c in items)
        + "</p>"
    )


def _log_link(logs: dict[str, list[str]], package: str, step: str) -> str | None:
    """The log of one step: ``build.log`` for build, the first ``quality-*.log`` for
    quality, ``test.log`` for test."""
    for rel in logs.get(package, []):
        name = rel.rsplit("/", 1)[-1]
        if name == f"{step}.log" or (step == "quality" and name.startswith("quality-")):
            return rel
    return None


def _origin(report: BuildReport) -> tuple[datetime, float]:
    """(timeline start, its length in ms): the suite's start to its end."""
    end = report.timestamp
    start = end - timedelta(milliseconds=report.total_duration)
    for r in report.package_reports:
        for t in [r.start_time, *(s.start for s in r.steps)]:
            if t is not None and t < start:
                start = t
    return start, max((end - start).total_seconds() * 1000, 1.0)


def timeline_svg(report: BuildReport, logs: dict[str, list[str]]) -> str:
    """Gantt chart: per package, the wait before it started, then one bar per step that ran
    (install, build, test, quality, each fix attempt, publish), linked to the step's log."""
    t0, total = _origin(report)

    def x(t: datetime) -> float:
        return LEFT + (t - t0).total_seconds() * 1000 / total * SPAN_WIDTH

    rows: list[str] = []
    packages = report.package_reports
    install = report.install
    starts = [r.start_time for r in packages if r.start_time is not None]
    offset = 0
    if install is not None and not install.skipped and install.duration_ms > 0:
        # The suite's one install ran right before the first package started.
        end = min(starts) if starts else report.timestamp
        begin = end - timedelta(milliseconds=install.duration_ms)
        bar = (
            f'<rect class="step step-install{"" if install.ok else " failed"}" '
            f'data-step="install" x="{x(begin):.1f}" y="26" '
            f'width="{max(x(end) - x(begin), 2):.1f}" height="{ROW - 4}" '
            f'fill="{STEP_COLOURS["install"]}"><title>workspace install'
            f"{' (' + _e(install.tool) + ')' if install.tool else ''}: "
            f"{_secs(install.duration_ms)}</title></rect>"
        )
        install_log = logs.get("", [""])[0]
        rows.append(
            '<text x="4" y="38">workspace install</text>'
            + (f'<a href="{_e(install_log)}">{bar}</a>' if install_log else bar)
        )
        offset = 1
    for i, r in enumerate(packages, start=offset):
        y = 24 + i * ROW
        rows.append(f'<text x="4" y="{y + 14}">{_e(r.package_name)}</text>')
        if r.start_time is None:
            rows.append(
                f'<text class="note" x="{LEFT + 4}" y="{y + 14}" fill="#57606a">'
                f"{_e(r.status.value)} — never started</text>"
            )
            continue
        rows.append(
            f'<rect class="wait" x="{LEFT}" y="{y + 4}" '
            f'width="{max(x(r.start_time) - LEFT, 0):.1f}" height="{ROW - 8}" '
            f'fill="{STEP_COLOURS["wait"]}"><title>{_e(r.package_name)} waited '
            f"{_secs((r.start_time - t0).total_seconds() * 1000)} (dependencies, "
            "install, a free slot)</title></rect>"
        )
        if r.status.value == "cached" and not r.steps and r.end_time is not None:
            rows.append(
                f'<rect class="bar cached" x="{x(r.start_time):.1f}" y="{y + 2}" '
                f'width="{max(x(r.end_time) - x(r.start_time), 2):.1f}" '
                f'height="{ROW - 4}" fill="{STEP_COLOURS["cached"]}">'
                "<title>restored from the cache</title></rect>"
            )
        for s in r.steps:
            kind = _kind(s.name)
            ms = (s.end - s.start).total_seconds() * 1000
            bar = (
                f'<rect class="step step-{_e(kind)}{"" if s.ok else " failed"}" '
                f'data-step="{_e(s.name)}" x="{x(s.start):.1f}" y="{y + 2}" '
                f'width="{max(x(s.end) - x(s.start), 2):.1f}" height="{ROW - 4}" '
                f'fill="{STEP_COLOURS.get(kind, "#6e7781")}"'
                + ("" if s.ok else ' stroke="#82071e" stroke-width="2"')
                + f"><title>{_e(r.package_name)} {_e(s.name)}: {_secs(ms)}"
                f"{'' if s.ok else ' (failed)'}</title></rect>"
            )
            link = _log_link(logs, r.package_name, kind)
            if kind == "fix":
                link = f"#fix-{_anchor(r.package_name)}"
            rows.append(f'<a href="{_e(link)}">{bar}</a>' if link else bar)
    height = 34 + (len(packages) + offset) * ROW
    ticks = []
    step_ms = _tick(total)
    n = 0
    while n * step_ms <= total:
        tx = LEFT + n * step_ms / total * SPAN_WIDTH
        ticks.append(
            f'<line x1="{tx:.1f}" y1="16" x2="{tx:.1f}" y2="{height}" '
            f'stroke="#eaeef2"/><text x="{tx + 2:.1f}" y="12" fill="#57606a">'
            f"{n * step_ms / 1000:g} s</text>"
        )
        n += 1
    return (
        f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" '
        f'width="{LEFT + SPAN_WIDTH + 20}" height="{height}">'
        + "".join(ticks)
        + "".join(rows)
        + "</svg>"
    )


def _tick(total_ms: float) -> float:
    for step in (
        100,
        250,
        500,
        1000,
        2000,
        5000,
        10000,
        15000,
        30000,
        60000,
        120000,
        300000,
        600000,
        1800000,
        3600000,
    ):
        if total_ms / step <= 12:
            return step
    return total_ms / 10


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def graph_svg(report: BuildReport) -> str:
    """The dependency graph, one node per package coloured by status; an edge into a
    blocked package from a failed or blocked dependency is drawn red and dashed (the
    blocked chain)."""
    by_name = {r.package_name: r for r in report.package_reports}
    layer: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in layer:
            return layer[name]
        deps = [d for d in by_name[name].dependencies if d in by_name and d not in seen]
        layer[name] = 0 if not deps else 1 + max(depth(d, seen | {name}) for d in deps)
        return layer[name]

    columns: dict[int, list[str]] = {}
    for r in report.package_reports:
        columns.setdefault(depth(r.package_name), []).append(r.package_name)
    pos: dict[str, tuple[float, float]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (20 + col * 230, 20 + row * 52)
    width, height = 190, 36
    edges: list[str] = []
    for r in report.package_reports:
        for d in r.dependencies:
            if d not in pos:
                continue
            (x1, y1), (x2, y2) = pos[d], pos[r.package_name]
            blocked = r.status.value == "blocked" and by_name[d].status.value in (
                "failed",
                "blocked",
            )
            sx, sy, ex, ey = x1 + width, y1 + height / 2, x2, y2 + height / 2
            edges.append(
                f'<path class="edge{" blocked" if blocked else ""}" '
                f'data-from="{_e(d)}" data-to="{_e(r.package_name)}" '
                f'd="M{sx:.0f},{sy:.0f} C{sx + 40:.0f},{sy:.0f} {ex - 40:.0f},{ey:.0f} '
                f'{ex:.0f},{ey:.0f}" fill="none" '
                + (
                    'stroke="#cf222e" stroke-width="2" stroke-dasharray="5 3"'
                    if blocked
                    else 'stroke="#8c959f" stroke-width="1.2"'
                )
                + "/>"
            )
    nodes: list[str] = []
    for r in report.package_reports:
        px, py = pos[r.package_name]
        status = r.status.value
        label = r.package_name if len(r.package_name) <= 26 else r.package_name[:25] + "…"
        note = r.error or (f"blocked by {', '.join(r.blocked_by)}" if r.blocked_by else "")
        nodes.append(
            f'<g class="node status-{_e(status)}" data-package="{_e(r.package_name)}">'
            f'<rect x="{px}" y="{py}" width="{width}" height="{height}" rx="6" '
            f'fill="{STATUS_COLOURS.get(status, "#afb8c1")}" fill-opacity="0.25" '
            f'stroke="{STATUS_COLOURS.get(status, "#afb8c1")}" stroke-width="2"/>'
            f'<text x="{px + 8}" y="{py + 15}">{_e(label)}</text>'
            f'<text x="{px + 8}" y="{py + 29}" fill="#57606a">{_e(status)}</text>'
            f"<title>{_e(r.package_name)}: {_e(status)}{' — ' + _e(note) if note else ''}"
            "</title></g>"
        )
    w = 40 + (max(columns) + 1 if columns else 1) * 230
    h = 40 + max((len(v) for v in columns.values()), default=1) * 52
    return (
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{w}" '
        f'height="{h}">' + "".join(edges) + "".join(nodes) + "</svg>"
    )


def _coverage_rows(report: BuildReport) -> str:
    rows = []
    for r in report.package_reports:
        cov, limit = r.quality.test_coverage, r.quality.coverage_threshold
        if cov is None and limit is None:
            continue
        ok = cov is not None and (limit is None or cov >= limit)
        meter = ""
        if cov is not None:
            meter = (
                f'<span class="meter{"" if ok else " fail"}"><i style="width:'
                f'{min(cov, 100):.0f}%"></i>'
                + (f'<b style="left:{min(limit, 100):.0f}%"></b>' if limit else "")
                + "</span>"
            )
        rows.append(
            f"<tr><td>{_e(r.package_name)}</td><td>{_e(r.category.value if r.category else '')}"
            f"</td><td>{'none' if cov is None else f'{cov:.1f}%'}</td>"
            f"<td>{'' if limit is None else f'{limit:g}%'}</td><td>{meter}</td>"
            f'<td class="{"ok" if ok else "bad"}">{"meets" if ok else "below"}</td></tr>'
        )
    if not rows:
        return '<p class="sub">No package produced coverage.</p>'
    return (
        '<table class="coverage"><tr><th>package</th><th>category</th><th>coverage</th>'
        "<th>threshold</th><th></th><th></th></tr>" + "".join(rows) + "</table>"
    )


def _fix_rows(report: BuildReport) -> str:
    parts = []
    for r in report.package_reports:
        if not r.fix_attempts:
            continue
        parts.append(
            f'<h3 id="fix-{_anchor(r.package_name)}">{_e(r.package_name)}</h3>'
            "<table><tr><th>#</th><th>types</th><th>time</th><th>tokens</th>"
            "<th>cost</th><th>outcome</th><th>files</th></tr>"
        )
        for a in r.fix_attempts:
            outcome = (
                '<span class="ok">applied</span>'
                if a.succeeded
                else f'<span class="bad">{_e(a.error or "not applied")}</span>'
            )
            parts.append(
                f"<tr><td>{a.count}</td><td>{_e(', '.join(a.types))}</td>"
                f"<td>{_secs(a.fix_duration)}</td><td>{a.tokens.total}</td>"
                f"<td>${a.cost_usd:.4f}</td><td>{outcome}</td>"
                f"<td>{_e(', '.join(a.files_changed))}</td></tr>"
            )
            if a.agent_prompt_used:
                parts.append(
                    f'<tr><td></td><td colspan="6"><details><summary>prompt'
                    f"</summary><pre>{_e(a.agent_prompt_used)}</pre></details>"
                    "</td></tr>"
                )
        parts.append("</table>")
    return "".join(parts) or '<p class="sub">No fix attempts.</p>'


def _package_rows(report: BuildReport, logs: dict[str, list[str]]) -> str:
    rows = []
    for r in report.package_reports:
        links = " ".join(
            f'<a href="{_e(rel)}">{_e(rel.rsplit("/", 1)[-1])}</a>'
            for rel in logs.get(r.package_name, [])
        )
        rows.append(
            f'<tr class="pkg status-{_e(r.status.value)}"><td>{_e(r.package_name)}</td>'
            f'<td>{_e(r.version)}</td><td style="color:'
            f'{STATUS_COLOURS.get(r.status.value, "#1f2328")}">{_e(r.status.value)}</td>'
            f"<td>{_secs(r.duration) if r.start_time and r.end_time else ''}</td>"
            f"<td>{_e(r.error or '')}</td><td>{links}</td></tr>"
        )
    return (
        '<table class="packages"><tr><th>package</th><th>version</th><th>status</th>'
        "<th>time</th><th>error</th><th>logs</th></tr>" + "".join(rows) + "</table>"
    )


def suite_page(report: BuildReport, logs: dict[str, list[str]]) -> str:
    """The page of one suite. ``logs``: per package, its log files as links relative to
    where the page is written."""
    counts = (
        f"{report.successful} succeeded, {report.failed} failed, {report.blocked} "
        f"blocked, {report.skipped} skipped"
        + (f", {report.cancelled} cancelled" if report.cancelled else "")
    )
    verdict = (
        '<span class="warn">cancelled</span>'
        if report.error == "cancelled"
        else '<span class="bad">failed</span>'
        if report.failed or report.blocked or report.error or report.verify_passed is False
        else '<span class="ok">success</span>'
    )
    verify = (
        ""
        if report.verify_passed is None
        else f" · VERIFY {'passed' if report.verify_passed else 'failed'}"
    )
    calls = sum(model_calls(r.fix_attempts) for r in report.package_reports)
    steps = sum(len(r.steps) for r in report.package_reports) + (
        1 if report.install and not report.install.skipped and report.install.duration_ms else 0
    )
    body = (
        f"<h1>Suite {_e(report.build_id)} — {verdict}</h1>"
        f'<p class="sub">{_e(report.workspace_root)} · {_e(report.timestamp.isoformat())} · '
        f"{counts} in {_secs(report.total_duration)}{verify} · {calls} model call(s) to fix "
        f"failures · {report.tokens.total} tokens · ${report.cost_usd:.4f}</p>"
        f'<h2>Timeline</h2><p class="sub">{steps} steps; each bar links to its log. '
        "The grey bar is the time a package waited before it started.</p>"
        + _legend((k, c) for k, c in STEP_COLOURS.items() if k != "report")
        + timeline_svg(report, logs)
        + '<h2>Dependency graph</h2><p class="sub">Dependencies on the left; a red dashed '
        "edge is a blocked chain.</p>"
        + _legend(STATUS_COLOURS.items())
        + graph_svg(report)
        + "<h2>Packages</h2>"
        + _package_rows(report, logs)
        + "<h2>Coverage against the category threshold</h2>"
        + _coverage_rows(report)
        + "<h2>Fix attempts</h2>"
        + _fix_rows(report)
    )
    return _page(f"pkgbuilder suite {report.build_id}", body)


def package_logs(
    log_root: Path, report: BuildReport, link_prefix: str, slug: dict[str, str]
) -> dict[str, list[str]]:
    """Per package, its log files under ``log_root/<slug>/`` as ``link_prefix``-relative
    links (sorted: build, test, quality, … as the names sort)."""
    out: dict[str, list[str]] = {}
    if (log_root / "install.log").is_file():
        out[""] = [f"{link_prefix}install.log"]  # the suite's own install
    for r in report.package_reports:
        directory = log_root / slug[r.package_name]
        if directory.is_dir():
            out[r.package_name] = [
                f"{link_prefix}{slug[r.package_name]}/{p.name}"
                for p in sorted(directory.glob("*.log"))
            ]
    return out


def generation_page(result: GenerationResult) -> str:
    """The page of one generation session: phases with their commits, files, model calls,
    tokens and cost, then the validation outcome."""
    total = max(result.total_usage.total, 1)
    rows = []
    for s in result.steps:
        share = s.usage.total / total * 100
        rows.append(
            f'<tr class="phase status-{_e(s.status)}"><td>{s.step_number}</td>'
            f"<td>{_e(s.phase.value)}</td><td>{_e(s.status)}</td>"
            f"<td><code>{_e((s.commit or '')[:12])}</code></td><td>{s.files}</td>"
            f"<td>{s.model_calls}</td><td>{s.usage.total}</td><td>${s.cost_usd:.4f}</td>"
            f'<td><span class="meter"><i style="width:{share:.0f}%"></i></span></td></tr>'
        )
    validation = ""
    if result.validation is not None:
        v = result.validation
        validation = (
            f"<h2>Validation</h2><p>{'passed' if v.passed else 'failed'} · "
            f"{v.fix_attempts} fix attempt(s)"
            + (f" · coverage {v.coverage_percent:.1f}%" if v.coverage_percent is not None else "")
            + "</p>"
        )
    body = (
        f"<h1>Generation {_e(result.session_id)} — {_e(result.status.value)}</h1>"
        f'<p class="sub">{_e(result.package_name)} in {_e(result.package_path)} · branch '
        f"<code>{_e(result.branch)}</code> from <code>{_e(result.base_branch)}</code> · "
        f"{result.total_usage.total} tokens · ${result.total_cost_usd:.4f}"
        + (
            f" · merged as <code>{_e((result.merge_commit or '')[:12])}</code>"
            if result.merged
            else ""
        )
        + "</p>"
        + (f'<p class="bad">{_e(result.error)}</p>' if result.error else "")
        + '<h2>Phases</h2><table class="phases"><tr><th>#</th><th>phase</th><th>status</th>'
        "<th>commit</th><th>files</th><th>model calls</th><th>tokens</th><th>cost</th>"
        "<th>share of tokens</th></tr>" + "".join(rows) + "</table>" + validation
    )
    return _page(f"pkgbuilder generation {result.session_id}", body)


def is_self_contained(page: str) -> bool:
    """No resource loaded from elsewhere (the page must work offline)."""
    lowered = page.lower()
    return not any(
        marker in lowered
        for marker in ("<script src", "<link ", "@import", 'src="http', "src='http", "url(http")
    )


def write_suite_pages(day_dir: Path, report: BuildReport) -> Path:
    """Write ``<day>/suite-summary.html`` (the day's latest suite, beside
    suite-summary.json) and ``<day>/suites/<buildId>.html``; returns the latter."""
    from pkgbuilder.models.common import name_slug
    from pkgbuilder.util.atomic import write_bytes_atomic

    slug = {r.package_name: name_slug(r.package_name) for r in report.package_reports}
    log_root = day_dir / "logs" / report.build_id
    latest = suite_page(report, package_logs(log_root, report, f"logs/{report.build_id}/", slug))
    write_bytes_atomic(day_dir / "suite-summary.html", latest.encode("utf-8"), durable=False)
    own = day_dir / "suites" / f"{report.build_id}.html"
    page = suite_page(report, package_logs(log_root, report, f"../logs/{report.build_id}/", slug))
    write_bytes_atomic(own, page.encode("utf-8"), durable=False)
    return own


def write_generation_page(state_file: Path, ctx: GenerationContext | None = None) -> Path:
    """Render the session (``ctx``, else read from ``state_file``) to ``<state file>.html``
    beside the state file."""
    from pkgbuilder.session.report import result_from_context
    from pkgbuilder.session.state import read_state
    from pkgbuilder.util.atomic import write_bytes_atomic

    ctx = ctx or read_state(state_file)
    page = generation_page(result_from_context(ctx, str(state_file)))
    target = state_file.with_suffix(".html")
    write_bytes_atomic(target, page.encode("utf-8"), durable=False)
    return target
