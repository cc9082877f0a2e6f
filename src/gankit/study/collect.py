"""Read runs and sweeps back into one comparison: settings, seeds, scores with their protocol.

Everything comes from the files a run writes (config.yaml, stats.jsonl, metrics.jsonl,
samples/), never from the code that trained it, so a report can compare runs made months apart.
Rows are settings; a setting's seeds are aggregated as mean ± sample std with their number n.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError
from gankit.utils import read_jsonl

SAMPLE_RE = re.compile(r"step-(\d+)\.png$")
# The fields that make two scores comparable (README "The protocol stored with every score").
PROTOCOL_FIELDS = ("n_generated", "n_reference", "reference_split", "backbone", "weights_hash", "network")
# libyaml's parser where PyYAML has it: a report reads every run's config.yaml (110 lines), which
# the pure-Python parser takes 5-8 ms for.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class RunData:
    path: Path
    name: str
    config: dict[str, Any]
    setting: dict[str, str]  # axis -> label (from the sweep manifest, else the keys that differ)
    seed: int
    status: str  # done | failed | ... (sweep trials), or "run"
    stats: list[dict[str, Any]]  # one per step, the last written when a step was logged twice
    scores: list[dict[str, Any]]  # training scores, one per (metric, step)
    collapse: dict[str, Any] | None
    samples: list[tuple[int, Path]]  # (step, png), by step
    sweep: str = ""
    error: str = ""
    overrides: list[str] = field(default_factory=list)

    @property
    def setting_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.setting.items())


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    return _flatten(config)


def _read_run(path: Path, setting: dict[str, str] | None, status: str, sweep: str, error: str = "",
              overrides: list[str] | None = None) -> RunData:
    try:
        config = yaml.load((path / "config.yaml").read_text(), Loader=_LOADER) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GankitError(f"cannot read {path / 'config.yaml'} ({type(exc).__name__}); "
                          f"is {path} a gankit run?") from None
    by_step = {r["step"]: r for r in read_jsonl(path / "stats.jsonl")}  # a resumed step: keep the later
    records = read_jsonl(path / "metrics.jsonl")
    scores = {(r["metric"], r["checkpoint_step"]): r for r in records
              if r.get("source") == "training" and "metric" in r and isinstance(r.get("value"), (int, float))}
    collapse = next((r for r in records if r.get("event") == "collapse"), None)
    samples = sorted((int(m.group(1)), p) for p in (path / "samples").glob("step-*.png")
                     if (m := SAMPLE_RE.search(p.name)))
    return RunData(path=path, name=path.name, config=config, setting=dict(setting or {}),
                   seed=int(config.get("train", {}).get("seed", 0)), status=status,
                   stats=[by_step[s] for s in sorted(by_step)],
                   scores=sorted(scores.values(), key=lambda r: (r["checkpoint_step"], r["metric"])),
                   collapse=collapse, samples=samples, sweep=sweep, error=error, overrides=list(overrides or []))


def collect_runs(dirs: list[Path]) -> list[RunData]:
    """Every run under the given run or sweep directories; a folder that is neither is refused."""
    runs: list[RunData] = []
    loose: list[RunData] = []
    for folder in map(Path, dirs):
        if (folder / "sweep.yaml").is_file():
            manifest = yaml.load((folder / "sweep.yaml").read_text(), Loader=_LOADER) or {}
            for trial in manifest.get("trials", []):
                run_dir = folder / trial["name"]
                # A trial that never started has nothing to show; one that failed is listed with its error.
                if (run_dir / "stats.jsonl").is_file() or trial.get("status") == "failed":
                    runs.append(_read_run(run_dir, trial.get("setting"), trial.get("status", ""),
                                          str(manifest.get("sweep", folder.name)), trial.get("error", ""),
                                          trial.get("overrides")))
        elif (folder / "config.yaml").is_file() and (folder / "stats.jsonl").is_file():
            loose.append(_read_run(folder, None, "run", ""))
        else:
            raise GankitError(f"{folder} is neither a run directory (config.yaml and stats.jsonl) nor a sweep "
                              "(sweep.yaml); pass folders made by `gankit train` or `gankit sweep`.")
    if loose:  # plain runs: their setting is whatever differs between them, seed apart
        flats = [flat_config(r.config) for r in loose]
        keys = sorted({k for f in flats for k in f})
        varied = [k for k in keys if k not in ("train.seed", "description")
                  and len({repr(f.get(k)) for f in flats}) > 1]
        for run, flat in zip(loose, flats, strict=True):
            run.setting = {k: _text(flat.get(k)) for k in varied} if varied else {"run": run.name}
    runs += loose
    if not runs:
        raise GankitError(f"no trial in {', '.join(map(str, dirs))} has started yet; run the sweep first.")
    return runs


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


# ---------------------------------------------------------------------------------------------
# Protocols and scores.


def protocol_of(record: dict[str, Any]) -> tuple:
    return tuple(record.get(k) for k in PROTOCOL_FIELDS)


def describe_protocol(record: dict[str, Any]) -> str:
    ref = f"{record['n_reference']} {record['reference_split']} images" if record.get("n_reference") else "no reference"
    backbone = record.get("backbone") or "no backbone"
    weights = f" (weights {record['weights_hash']})" if record.get("weights_hash") else ""
    return f"{record['n_generated']} samples of {record['network']} against {ref}, {backbone}{weights}"


def check_protocols(runs: list[RunData]) -> dict[str, str]:
    """group -> its protocol; scores of one metric measured two ways on one dataset are refused.
    Scores on different datasets are never comparable (a ring's spread is not MNIST's), so a study
    over several datasets may score each with its own protocol; the text then names each."""
    seen: dict[tuple[str, str], tuple[tuple, str, str]] = {}
    for run in runs:
        data = str(run.config.get("data", {}).get("name", ""))
        for record in run.scores:
            key = (record.get("group", record["metric"]), data)
            proto = protocol_of(record)
            if key not in seen:
                seen[key] = (proto, describe_protocol(record), run.name)
            elif seen[key][0] != proto:
                first, where = seen[key][1], seen[key][2]
                raise GankitError(f"{key[0]} was measured with different protocols ({first} in {where}, "
                                  f"but {describe_protocol(record)} in {run.name}); report them apart, "
                                  "or re-score them alike with `gankit eval`.")
    texts: dict[str, dict[str, str]] = {}
    for (group, data), (_, text, _) in seen.items():
        texts.setdefault(group, {})[data] = text
    return {group: next(iter(by_data.values())) if len(set(by_data.values())) == 1
            else "; ".join(f"{text} on {data}" for data, text in by_data.items())
            for group, by_data in texts.items()}


def metric_names(runs: list[RunData]) -> list[str]:
    names = dict.fromkeys(r["metric"] for run in runs for r in run.scores if not r["metric"].endswith("_std"))
    return list(names)


def lower_is_better(name: str) -> bool:
    from gankit.metrics.evaluate import lower_is_better as lower

    try:
        return lower(name)
    except GankitError:
        return True


def watched_metric(runs: list[RunData], requested: str | None) -> str | None:
    names = metric_names(runs)
    if requested is not None:
        if requested not in names:
            have = ", ".join(names) or "none (no run was scored during training)"
            raise GankitError(f"no run has scores named '{requested}'; they have {have}.")
        return requested
    for run in runs:
        ev = run.config.get("eval", {})
        if ev.get("best_metric") in names:
            return ev["best_metric"]
        if ev.get("metrics"):
            from gankit.metrics.evaluate import headline

            try:
                name = headline(ev["metrics"][0])
            except GankitError:
                continue
            if name in names:
                return name
    return names[0] if names else None


@dataclass
class RunSummary:
    best: dict[str, float]  # metric -> value at the best evaluation (before any collapse)
    last: dict[str, float]  # metric -> value at the last evaluation
    best_step: int | None
    collapse_step: int | None
    kimg: float
    seconds: float


def summarize(run: RunData, watch: str | None) -> RunSummary:
    """Seed 001's rule: the best checkpoint is the best evaluation before the collapse, if one occurred."""
    by_step: dict[int, dict[str, float]] = {}
    for r in run.scores:
        by_step.setdefault(r["checkpoint_step"], {})[r["metric"]] = float(r["value"])
    collapse_step = int(run.collapse["collapse_step"]) if run.collapse else None
    if watch is None or not any(watch in v for v in by_step.values()):
        watch = watched_metric([run], None)  # a study over two datasets: each run is judged by its own score
    best_step = None
    if watch is not None:
        candidates = [s for s, v in by_step.items() if watch in v and (collapse_step is None or s < collapse_step)]
        candidates = candidates or [s for s, v in by_step.items() if watch in v]
        if candidates:
            sign = 1 if lower_is_better(watch) else -1
            best_step = min(candidates, key=lambda s: (sign * by_step[s][watch], s))
    last_step = max(by_step) if by_step else None
    final = run.stats[-1] if run.stats else {}
    return RunSummary(best=by_step.get(best_step, {}) if best_step is not None else {},
                      last=by_step.get(last_step, {}) if last_step is not None else {},
                      best_step=best_step, collapse_step=collapse_step,
                      kimg=float(final.get("kimg", 0.0)), seconds=float(final.get("seconds", 0.0)))


@dataclass
class Cell:
    """Mean ± std over seeds, with n; `text` is how a reader sees it, `sort` how it orders."""

    values: list[float]
    digits: int = 4
    none_text: str = "-"
    extra: str = ""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def text(self) -> str:
        if not self.values:
            return self.none_text
        text = _fmt(self.mean, self.digits)
        if self.std is not None:
            text += f" ± {_fmt(self.std, 2)}"  # two figures say how far apart the seeds are
        return text + self.extra

    @property
    def sort(self) -> float:
        return self.mean if self.values else math.inf


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


@dataclass
class Row:
    setting: dict[str, str]
    runs: list[RunData]
    cells: dict[str, Cell]


@dataclass
class Table:
    axes: list[str]
    metrics: list[str]
    watch: str | None
    columns: list[str]  # value columns after the axes and n
    lower: dict[str, bool]  # column -> lower is better (for the best mark), absent = not marked
    rows: list[Row]
    protocols: dict[str, str]

    def best_rows(self, column: str) -> set[int]:
        """Rows holding the column's best mean (all of them on a tie); none when every row is equal."""
        if column not in self.lower:
            return set()
        scored = [(i, row.cells[column].sort) for i, row in enumerate(self.rows)
                  if row.cells[column].values or column == "collapse step"]
        if len({value for _, value in scored}) < 2:
            return set()
        best = (min if self.lower[column] else max)(value for _, value in scored)
        return {i for i, value in scored if value == best}


def build_table(runs: list[RunData], watch: str | None) -> Table:
    runs = [r for r in runs if r.status != "failed"]  # a failed trial's partial scores would bias its row
    protocols = check_protocols(runs)
    metrics = metric_names(runs)
    axes = list(dict.fromkeys(axis for run in runs for axis in run.setting))
    groups: dict[tuple, list[RunData]] = {}
    for run in runs:
        groups.setdefault(tuple(run.setting.get(a, "-") for a in axes), []).append(run)
    columns, lower = [], {}
    for m in metrics:
        for when in ("best", "last"):
            columns.append(f"{m} ({when})")
            lower[f"{m} ({when})"] = lower_is_better(m)
    columns += ["collapse step", "kimg", "wall time (s)"]
    lower["collapse step"] = False  # a later collapse (or none) is better
    lower["wall time (s)"] = True
    rows = []
    for key, members in groups.items():
        members.sort(key=lambda r: r.seed)
        sums = [summarize(r, watch) for r in members]
        cells = {}
        for m in metrics:
            cells[f"{m} (best)"] = Cell([s.best[m] for s in sums if m in s.best])
            cells[f"{m} (last)"] = Cell([s.last[m] for s in sums if m in s.last])
        collapsed = [float(s.collapse_step) for s in sums if s.collapse_step is not None]
        cell = Cell(collapsed, digits=6, none_text="none",
                    extra=f" ({len(collapsed)}/{len(sums)} seeds)" if collapsed and len(collapsed) < len(sums) else "")
        cells["collapse step"] = cell  # "none" sorts as infinitely late: the best a run can do
        cells["kimg"] = Cell([s.kimg for s in sums], digits=4)
        cells["wall time (s)"] = Cell([s.seconds for s in sums], digits=4)
        rows.append(Row(dict(zip(axes, key, strict=True)), members, cells))
    if watch is not None and f"{watch} (best)" in columns:
        sign = 1 if lower_is_better(watch) else -1
        rows.sort(key=lambda r: sign * r.cells[f"{watch} (best)"].sort if r.cells[f"{watch} (best)"].values
                  else math.inf)
    return Table(axes, metrics, watch, columns, lower, rows, protocols)
