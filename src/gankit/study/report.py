"""`gankit report`: one self-contained HTML page comparing runs, plus table.csv and table.md.

The page needs no network to view: figures are PNGs drawn with matplotlib and embedded as
data: URIs, and the only script (sorting the table) is inline. Sections:
- the metric protocol, once, then the comparison table (rows = settings, mean ± std over seeds);
- curves: losses and scores against kimg, one line per setting, seeds' spread shaded;
- the sample panel over training (seed 002): rows = settings, columns = steps;
- per run: config diff against its preset, final grid, and links to its files.
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gankit.study.collect import RunData, Table, build_table, collect_runs, flat_config, watched_metric
from gankit.utils import atomic_write, atomic_write_text

PANEL_COLUMNS = 6  # sample-panel steps shown per row, spread evenly over training
THUMB_PX = 150  # panel thumbnail side; the per-run final grid is shown at FINAL_PX
FINAL_PX = 260


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _thumbnail(path: Path, size: int) -> str:
    """The PNG at most `size` pixels on a side. A grid that already fits is embedded as its own
    bytes: opening reads only its header, and decoding and re-encoding it would spend CPU on the
    same pixels."""
    from PIL import Image

    with Image.open(path) as image:
        if max(image.size) <= size and image.format == "PNG":
            return _png_uri(path.read_bytes())
        image = image.convert("RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        # zlib level 1: a third of the default level's encoding time, and no larger on noisy sample grids
        image.save(buffer, format="PNG", compress_level=1)
    return _png_uri(buffer.getvalue())


def _figure_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return _png_uri(buffer.getvalue())


def _label(setting: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


# ---------------------------------------------------------------------------------------------
# Curves: one line per setting (mean over seeds), the seeds' min-max shaded.


def _series(run: RunData, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name.startswith(("D/", "G/")):
        points = [(r["kimg"], r[name]) for r in run.stats if name in r]
    else:
        points = [(r["kimg"], r["value"]) for r in run.scores if r["metric"] == name]
    if not points:
        return np.empty(0), np.empty(0)
    x, y = zip(*sorted(points), strict=True)
    return np.asarray(x, float), np.asarray(y, float)


def curve_figures(table: Table) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = list(dict.fromkeys(k for row in table.rows for run in row.runs for r in run.stats[:1] for k in r
                                if k.startswith(("D/", "G/"))))
    colors = plt.get_cmap("tab20" if len(table.rows) > 10 else "tab10")
    figures = []
    for name in [*table.metrics, *losses]:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        drawn = 0
        for i, row in enumerate(table.rows):
            series = [s for s in (_series(run, name) for run in row.runs) if len(s[0])]
            if not series:
                continue
            x = series[0][0]  # seeds of one setting log at the same kimg; interp guards a shorter one
            ys = np.stack([np.interp(x, sx, sy) for sx, sy in series])
            color, style = colors(i % colors.N), ("-", "--", ":", "-.")[(i // colors.N) % 4]
            mean = ys.mean(0)
            if len(x) == 1:  # scored only at the end (a benchmark row): a point, with the seeds' range as a bar
                ax.errorbar(x, mean, yerr=[mean - ys.min(0), ys.max(0) - mean], color=color, fmt="o",
                            markersize=4, capsize=3, label=_label(row.setting))
            else:
                ax.plot(x, mean, color=color, linestyle=style, linewidth=1.3, label=_label(row.setting))
                if len(series) > 1:
                    ax.fill_between(x, ys.min(0), ys.max(0), color=color, alpha=0.18, linewidth=0)
            drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("kimg")
        ax.set_ylabel(name)
        ax.set_title(name + ("" if name.startswith(("D/", "G/")) else " (evaluations)"), fontsize=10)
        ax.grid(alpha=0.3)
        if drawn <= 12:
            ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        figures.append((name, _figure_uri(fig)))
    return figures


def legend_figure(table: Table) -> str | None:
    """One shared legend when there are too many settings to label every plot."""
    if len(table.rows) <= 12:
        return None
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colors = plt.get_cmap("tab20")
    handles = [Line2D([], [], color=colors(i % colors.N), linestyle=("-", "--", ":", "-.")[(i // colors.N) % 4],
                      label=_label(row.setting)) for i, row in enumerate(table.rows)]
    fig = plt.figure(figsize=(9, 0.22 * ((len(handles) + 2) // 3) + 0.3))
    fig.legend(handles=handles, loc="center", ncol=3, fontsize=7, frameon=False)
    return _figure_uri(fig)


# ---------------------------------------------------------------------------------------------
# Tables in four forms: HTML, terminal (rich), CSV, Markdown.


def _header(table: Table, column: str) -> str:
    if column in table.lower and column not in ("collapse step", "wall time (s)"):
        return f"{column} {'↓' if table.lower[column] else '↑'}"
    return column


def table_html(table: Table) -> str:
    best = {c: table.best_rows(c) for c in table.columns}
    head = "".join(f'<th data-col="{i}" title="click to sort">{html.escape(h)}</th>'
                   for i, h in enumerate([*table.axes, "n", *(_header(table, c) for c in table.columns)]))
    body = []
    for i, row in enumerate(table.rows):
        cells = [f'<td data-sort="{html.escape(row.setting.get(a, "-"))}">{html.escape(row.setting.get(a, "-"))}</td>'
                 for a in table.axes]
        cells.append(f'<td data-sort="{len(row.runs)}">{len(row.runs)}</td>')
        for column in table.columns:
            cell = row.cells[column]
            mark = i in best[column]
            cells.append(f'<td data-sort="{cell.sort}" class="{"best" if mark else ""}">'
                         f'{html.escape(cell.text)}{" ★" if mark else ""}</td>')
        body.append(f'<tr data-setting="{html.escape(_label(row.setting))}">{"".join(cells)}</tr>')
    return (f'<table id="comparison" class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _plain_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    header = [*table.axes, "n", *(_header(table, c) for c in table.columns)]
    best = {c: table.best_rows(c) for c in table.columns}
    rows = [[*(row.setting.get(a, "-") for a in table.axes), str(len(row.runs)),
             *(row.cells[c].text + (" *" if i in best[c] else "") for c in table.columns)]
            for i, row in enumerate(table.rows)]
    return header, rows


def table_markdown(table: Table) -> str:
    header, rows = _plain_rows(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    notes = [f"- {group}: {text}" for group, text in table.protocols.items()]
    return "\n".join(lines) + "\n\nValues are mean ± std over n seeds; * marks each column's best.\n" + (
        "\nProtocol:\n" + "\n".join(notes) + "\n" if notes else "")


def write_csv(table: Table, path: Path) -> None:
    """Numbers, not text: mean, std and n of every column, for a spreadsheet or pandas."""
    header = [*table.axes, "n"]
    for column in table.columns:
        header += [f"{column} mean", f"{column} std", f"{column} n"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in table.rows:
        line = [*(row.setting.get(a, "-") for a in table.axes), len(row.runs)]
        for column in table.columns:
            cell = row.cells[column]
            line += ["" if cell.mean is None else f"{cell.mean:.6g}", "" if cell.std is None else f"{cell.std:.6g}",
                     cell.n]
        writer.writerow(line)
    atomic_write_text(path, buffer.getvalue())


def print_table(table: Table) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    header, rows = _plain_rows(table)
    out = RichTable(title="mean ± std over n seeds; * = best in column", title_justify="left")
    for i, name in enumerate(header):
        out.add_column(name, justify="left" if i < len(table.axes) else "right", overflow="fold")
    for row in rows:
        out.add_row(*row)
    # A terminal's own width at a terminal; piped or logged, wide enough that no header is folded
    # (a grep of the log should find "loss.name" whole, however many scores the runs carry).
    import sys

    width = None if sys.stdout.isatty() else max(120, sum(max(len(h), 12) + 3 for h in header))
    Console(width=width).print(out)


# ---------------------------------------------------------------------------------------------
# Sample panel and per-run sections.


def _panel_steps(steps: list[int]) -> list[int]:
    if len(steps) <= PANEL_COLUMNS:
        return steps
    picks = np.linspace(0, len(steps) - 1, PANEL_COLUMNS).round().astype(int)
    return [steps[i] for i in dict.fromkeys(picks.tolist())]


def sample_panels(table: Table) -> str:
    """Rows are settings (each setting's first seed), columns are steps; settings that saved the
    same steps share one panel, as seed 002 shows the ring and MNIST apart."""
    groups: dict[tuple[int, ...], list[tuple[str, RunData]]] = {}
    for row in table.rows:
        run = row.runs[0]
        if run.samples:
            groups.setdefault(tuple(_panel_steps([s for s, _ in run.samples])), []).append((_label(row.setting), run))
    parts = []
    for steps, members in groups.items():
        head = "".join(f"<th>{step} steps</th>" for step in steps)
        rows = []
        for label, run in members:
            paths = dict(run.samples)
            cells = "".join(f'<td><img src="{_thumbnail(paths[s], THUMB_PX)}" alt="{html.escape(label)} step {s}">'
                            f"</td>" for s in steps)
            rows.append(f'<tr><th class="rowhead">{html.escape(label)}<br><small>seed {run.seed}</small></th>'
                        f"{cells}</tr>")
        parts.append(f'<table class="panel"><thead><tr><th></th>{head}</tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
    return "\n".join(parts) or "<p>No run saved sample grids.</p>"


@functools.cache
def _preset_flat(preset: str) -> dict[str, Any]:
    """A preset's resolved config, flat; resolved once per preset, not once per run."""
    from gankit import config as config_lib
    from gankit.errors import GankitError

    try:
        base = config_lib.to_dict(config_lib.resolve(preset)) if preset else config_lib.to_dict(config_lib.Config())
    except GankitError:  # a preset that no longer ships: compare with the defaults
        base = config_lib.to_dict(config_lib.Config())
    return flat_config(base)


def config_diff(run: RunData) -> list[tuple[str, str, str]]:
    """(key, preset value, run value) for every key the run changed from its preset."""
    ours, theirs = flat_config(run.config), _preset_flat(run.config.get("preset") or "")
    return [(k, repr(theirs.get(k)), repr(ours[k])) for k in ours if k != "description" and ours[k] != theirs.get(k)]


def run_section(run: RunData, report_dir: Path) -> str:
    preset = html.escape(run.config.get("preset") or "defaults")
    diff = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
                   for k, a, b in config_diff(run)) or '<tr><td colspan="3">no change</td></tr>'
    links = []
    for rel in ("config.yaml", "stats.jsonl", "metrics.jsonl", "train.log", "sweep-status.json", "samples",
                "plots/losses.png", "plots/metrics.png", "checkpoints/latest.pt", "checkpoints/best.pt"):
        target = run.path / rel
        if target.exists():
            href = Path(os.path.relpath(target.resolve(), report_dir)).as_posix()
            links.append(f'<a href="{html.escape(href)}">{html.escape(rel)}</a>')
    final = (f'<img src="{_thumbnail(run.samples[-1][1], FINAL_PX)}" alt="final samples of {html.escape(run.name)}">'
             f"<br><small>step {run.samples[-1][0]}</small>") if run.samples else "<p>no sample grid</p>"
    status = f' <span class="failed">failed: {html.escape(run.error)}</span>' if run.status == "failed" else ""
    return (f'<details class="run"><summary><code>{html.escape(run.name)}</code> '
            f"({html.escape(run.sweep or 'run')}, seed {run.seed}){status}</summary>"
            f'<div class="runbody"><div><h4>config diff against preset {preset}</h4>'
            f"<table><thead><tr><th>key</th><th>preset</th><th>run</th></tr></thead><tbody>{diff}</tbody></table>"
            f'<p class="links">{" · ".join(links)}</p></div><div><h4>final grid</h4>{final}</div></div></details>')


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ddd;padding:3px 7px}
#comparison th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
#comparison th.asc::after{content:" ▲"} #comparison th.desc::after{content:" ▼"}
#comparison td{text-align:right} td.best{font-weight:bold;background:#e6f4e6}
.protocol{background:#f7f7fb;border-left:3px solid #88a;padding:6px 12px;font-size:13px}
.curves{display:flex;flex-wrap:wrap;gap:8px} .panel td{padding:2px} .panel .rowhead{text-align:left;max-width:220px}
.runbody{display:flex;gap:24px;flex-wrap:wrap} .failed{color:#b00} .links a{font-size:12px}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th) {
    th.addEventListener('click', function () {
      var col = Number(th.dataset.col), asc = !th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var nx = Number(x), ny = Number(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def failed_list(failed: list[RunData]) -> str:
    if not failed:
        return ""
    items = "".join(f"<li><code>{html.escape(r.name)}</code>: {html.escape(r.error or 'no error recorded')}</li>"
                    for r in failed)
    return f'<div class="failed"><b>{len(failed)} failed trial(s)</b>, left out of the table:<ul>{items}</ul></div>'


def render_html(table: Table, runs: list[RunData], report_dir: Path, sources: list[Path]) -> str:
    protocol = "".join(f"<li><b>{html.escape(g)}</b>: {html.escape(t)}</li>" for g, t in table.protocols.items())
    sweeps = sorted({r.sweep for r in runs if r.sweep})
    failed = [r for r in runs if r.status == "failed"]
    watch = f"best = the evaluation with the best <b>{html.escape(table.watch)}</b> before any collapse" \
        if table.watch else "no run was scored during training"
    curves = "".join(f'<img src="{uri}" alt="{html.escape(name)} against kimg">' for name, uri in curve_figures(table))
    legend = legend_figure(table)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gankit report: {html.escape(", ".join(sweeps) or "runs")}</title>
<style>{STYLE}</style></head><body>
<h1>gankit report: {html.escape(", ".join(sweeps) or f"{len(runs)} runs")}</h1>
<p>{len(runs) - len(failed)} runs in {len(table.rows)} settings, from {html.escape(", ".join(map(str, sources)))};
generated {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}.
</p>
{failed_list(failed)}
<h2>Comparison</h2>
<div class="protocol">Metric protocol (one per dataset): <ul>{protocol or "<li>no scores</li>"}</ul></div>
<p>Values are mean ± std over the n seeds of each setting. {watch}; "last" = the final evaluation.
★ marks the best value of each column. Click a header to sort.</p>
{table_html(table)}
<h2>Curves</h2>
<p>Against kimg (thousands of real images shown to D): the mean over seeds, with the seeds' range shaded.</p>
{f'<img src="{legend}" alt="legend">' if legend else ""}
<div class="curves">{curves or "<p>no curves</p>"}</div>
<h2>Samples over training</h2>
{sample_panels(table)}
<h2>Runs</h2>
{"".join(run_section(r, report_dir) for r in runs)}
<script>{SCRIPT}</script>
</body></html>
"""


def build_report(dirs: list[Path], out: Path | None = None, metric: str | None = None,
                 echo: Callable[[str], None] = print, show: bool = True) -> tuple[Path, Table]:
    """Write the HTML report, table.csv and table.md; print the table; return the HTML path."""
    started = time.perf_counter()
    runs = collect_runs(dirs)
    table = build_table(runs, watched_metric(runs, metric))
    if out is None:
        out = Path(dirs[0]) / "report.html" if len(dirs) == 1 and (Path(dirs[0]) / "sweep.yaml").is_file() \
            else Path("report.html")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(table, runs, out.parent.resolve(), dirs)
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    write_csv(table, out.parent / "table.csv")
    atomic_write_text(out.parent / "table.md", table_markdown(table))
    if show:
        print_table(table)
    echo(f"wrote {out} ({len(page) / 2**20:.1f} MB), {out.parent / 'table.csv'} and {out.parent / 'table.md'} "
         f"in {time.perf_counter() - started:.1f}s")
    return out, table
