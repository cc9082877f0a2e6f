"""Sweeps and reports: spec expansion, the real `gankit sweep` / `gankit report` commands, resume
after kill -9, a failing trial, submitit's local executor, and every bad input of issue 9."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gankit.errors import GankitError
from gankit.study.spec import load_spec
from gankit.utils import read_jsonl

from conftest import assert_user_error, run_cli

# Tiny ring trials: a process start and a few dozen MLP steps each.
TINY = ["train.steps=24", "train.batch_size=64", "model.width=16", "train.log_every=4", "train.sample_every=8",
        "train.checkpoint_every=8", "eval.metrics=[modes]", "eval.every_kimg=0.5", "eval.num_samples=256"]


def cli_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """The CLI's own main() in this process: the same exit code and stderr, without a second torch import."""
    from gankit.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def write_spec(folder: Path, name: str = "tiny", **changes) -> Path:
    spec = {"name": name, "preset": "gan-ring8", "seeds": [0, 1], "overrides": TINY,
            "grid": {"loss.name": ["nonsaturating", "hinge"]}}
    spec.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """One real sweep through the CLI: 2 losses x 2 seeds, plus a trial whose dataset is missing."""
    folder = tmp_path_factory.mktemp("sweep")
    spec = write_spec(folder, grid=[{"loss.name": ["nonsaturating", "hinge"]},
                                    {"loss.name": ["hinge"], "data": {"missing": ["data.name=mnist",
                                                                                  "data.root=nowhere"]}}],
                      seeds=[0, 1])
    proc = run_cli("sweep", str(spec), "--out", str(folder / "out"), "--jobs", "2")
    return folder, spec, folder / "out" / "tiny", proc


# ---------------------------------------------------------------------------------------------
# Specs


def test_spec_expands_product_union_presets_and_seed_flags(tmp_path):
    spec = load_spec(write_spec(tmp_path, seeds=[3, 4], grid=[
        {"loss.name": ["hinge", "lsgan"], "variant": {"plain": [], "sn": ["sng", "snd"]}},
        {"loss.name": ["hinge"], "variant": {"plain": []}, "acml": [2], "spd": [2]},
        {"loss.name": ["hinge"], "variant": {"plain": []}},  # repeats a trial of the first block: runs once
        {"gan": {"wgan": {"preset": "wgan-ring8", "overrides": ["train.steps=5"]}}},
    ]))
    names = [t.name for t in spec.trials]
    assert len(names) == len(set(names)) == (4 + 1 + 1) * 2
    assert "loss.name=hinge,variant=sn,seed=3" in names
    sn = next(t for t in spec.trials if t.name == "loss.name=hinge,variant=sn,seed=3")
    assert sn.config["model"]["spectral_norm_G"] and sn.config["model"]["spectral_norm_D"]
    assert sn.config["train"]["seed"] == 3 and sn.config["train"]["steps"] == 24
    acml = next(t for t in spec.trials if "acml" in t.setting)
    assert acml.config["train"]["gradient_accumulation"] == 2 and acml.config["train"]["discriminator_steps"] == 2
    wgan = next(t for t in spec.trials if t.setting.get("gan") == "wgan")
    assert wgan.preset == "wgan-ring8" and wgan.config["loss"]["name"] == "wasserstein"
    assert wgan.config["train"]["steps"] == 5  # the axis's overrides come after the shared ones


STUDIES = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_studies_resolve_every_trial(path):
    spec = load_spec(path)  # resolves and checks every trial's config: a stale key fails here
    assert spec.trials and all(t.config for t in spec.trials)


def test_the_collapse_study_changes_only_the_loss_between_its_rows():
    """Seed 002 compares GAN, WGAN and WGAN-GP in the one setting where its GAN collapses."""
    spec = load_spec(next(p for p in STUDIES if p.stem == "mode-collapse"))
    for data, preset in (("ring8", "gan-ring8-collapse"), ("mnist5k", "gan-mnist-collapse")):
        trials = [t for t in spec.trials if t.setting["data"] == data]
        rows = {t.setting["gan"]: t.config for t in trials}
        assert set(rows) == {"GAN", "WGAN", "WGAN-GP"} and {t.preset for t in trials} == {preset}
        for name, config in rows.items():
            assert config["model"] == rows["GAN"]["model"] and config["data"] == rows["GAN"]["data"], name
            assert config["train"]["steps"] == rows["GAN"]["train"]["steps"], name
            assert config["train"]["discriminator_steps"] == 5, name
        assert rows["WGAN"]["loss"]["clip"] == 0.01 and rows["WGAN-GP"]["loss"]["penalties"] == ["gp"]


@pytest.mark.parametrize("changes, fragment", [
    ({"grdi": {}}, "unknown key 'grdi'; did you mean 'grid'?"),
    ({"preset": "dcgan-mnsit"}, "unknown preset 'dcgan-mnsit'"),
    ({"overrides": ["train.stpes=3"]}, "unknown config key 'train.stpes'"),
    ({"grid": {"loss.name": ["hinge", "nosuchloss"]}}, "nosuchloss"),
    ({"grid": {}}, "the grid is empty"),
    ({"grid": {"loss.name": []}}, "grid axis 'loss.name' needs a non-empty list"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"slurm": {"partitoin": "gpu"}}, "unknown slurm key 'partitoin'; did you mean 'partition'?"),
])
def test_bad_specs_are_refused_before_any_trial(tmp_path, changes, fragment):
    with pytest.raises(GankitError, match=None) as info:
        load_spec(write_spec(tmp_path, **changes))
    assert fragment in str(info.value)


def test_bad_sweep_inputs_through_the_cli(tmp_path, tiny_sweep, capsys):
    out = tmp_path / "out"
    # One in a fresh process, exactly as a user sees it; the rest through the same main() in-process.
    assert_user_error(run_cli("sweep", str(write_spec(tmp_path, grid={})), "--out", str(out)), "the grid is empty")
    assert not out.exists()  # found before anything was written
    spec = write_spec(tmp_path, overrides=["train.stpes=3"])
    assert_user_error(cli_in_process(capsys, "sweep", str(spec), "--out", str(out)), "unknown config key 'train.stpes'")
    assert_user_error(cli_in_process(capsys, "sweep", str(spec), "--jobs", "0"), "--jobs must be 1 or more")
    assert not out.exists()
    # A folder that holds another sweep of the same name: refused, and nothing in it touched.
    _, _, done, _ = tiny_sweep
    before = (done / "sweep.yaml").read_text()
    other = write_spec(tmp_path, seeds=[7])
    assert_user_error(cli_in_process(capsys, "sweep", str(other), "--out", str(done.parent)), "holds a different sweep")
    assert (done / "sweep.yaml").read_text() == before
    assert_user_error(cli_in_process(capsys, "sweep", str(other), "--out", str(done.parent), "--launcher", "slurm"),
                      "holds a different sweep")
    (tmp_path / "junk" / "tiny").mkdir(parents=True)
    (tmp_path / "junk" / "tiny" / "notes.txt").write_text("mine")
    assert_user_error(cli_in_process(capsys, "sweep", str(other), "--out", str(tmp_path / "junk")),
                      "already holds files that are not a gankit sweep")
    assert (tmp_path / "junk" / "tiny" / "notes.txt").read_text() == "mine"


def test_dry_run_prints_trials_and_writes_nothing(tmp_path):
    proc = run_cli("sweep", str(write_spec(tmp_path, grid={"loss.name": ["hinge"]}, seeds=[0])), "--dry-run",
                   "--out", str(tmp_path / "out"), "--jobs", "2", check=True)
    assert "loss.name=hinge,seed=0  [pending]" in proc.stdout
    assert "gankit train gan-ring8 " in proc.stdout and "loss.name=hinge train.seed=0" in proc.stdout
    assert "2 at a time" in proc.stdout
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Running sweeps


def test_sweep_runs_every_trial_and_records_a_failure(tiny_sweep):
    _, _, folder, proc = tiny_sweep
    assert proc.returncode == 1, proc.stderr  # one trial failed; the sweep itself ran
    manifest = yaml.safe_load((folder / "sweep.yaml").read_text())
    by_name = {t["name"]: t for t in manifest["trials"]}
    assert len(by_name) == 6
    failed = [t for t in by_name.values() if t["status"] == "failed"]
    assert [t["setting"] for t in failed] == [{"loss.name": "hinge", "data": "missing"}] * 2
    for trial in failed:
        assert "\n" not in trial["error"] and "mnist" in trial["error"].lower(), trial["error"]
    for name, trial in by_name.items():
        if trial["status"] == "done":
            run = folder / name
            assert (run / "checkpoints" / "latest.pt").is_file() and (run / "samples" / "step-000024.png").is_file()
            assert yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"] == trial["seed"]
            assert json.loads((run / "sweep-status.json").read_text())["threads"] == 1  # 2 cores / 2 jobs
    assert manifest["counts"] == {"done": 4, "failed": 2}


def test_rerun_skips_finished_trials(tiny_sweep):
    _, spec, folder, _ = tiny_sweep
    done = folder / "loss.name=hinge,seed=0"
    stamp = (done / "checkpoints" / "latest.pt").stat().st_mtime_ns
    proc = run_cli("sweep", str(spec), "--out", str(folder.parent), "--jobs", "2")
    assert "4 already done, 2 to run" in proc.stdout, proc.stdout
    assert (done / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" if Path(f"/proc/{pid}").exists() else False


def test_kill_9_midway_then_restart_finishes_without_training_anything_twice(tmp_path):
    spec = write_spec(tmp_path, name="killme", seeds=[0, 1], grid={"loss.name": ["hinge"]},
                      overrides=[*TINY, "train.steps=160", "train.log_every=20", "train.checkpoint_every=40",
                                 "train.sample_every=80", "eval.every_kimg=5.12"])
    out = tmp_path / "out"
    folder = out / "killme"
    cmd = [sys.executable, "-m", "gankit", "sweep", str(spec), "--out", str(out), "--jobs", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny MLP: a second thread only waits at barriers
    sweep = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    second = folder / "loss.name=hinge,seed=1"
    deadline = time.time() + 600
    while not (second / "checkpoints" / "latest.pt").is_file():  # trial 1 done, trial 2 halfway
        assert time.time() < deadline and sweep.poll() is None, "the sweep never reached its second trial"
        time.sleep(0.1)
    child = json.loads((second / "sweep-status.json").read_text())["pid"]
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    for _ in range(100):  # the trial process dies with its sweep (parent-death signal)
        if not _pid_alive(child):
            break
        time.sleep(0.05)
    assert not _pid_alive(child)
    first = folder / "loss.name=hinge,seed=0"
    stamp = (first / "checkpoints" / "latest.pt").stat().st_mtime_ns
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "1 already done, 1 to run" in proc.stdout, (proc.stdout, proc.stderr)
    manifest = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert [t["status"] for t in manifest["trials"]] == ["done"] * 2
    assert (first / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp  # never trained again
    assert json.loads((second / "sweep-status.json").read_text())["resumed_from"] >= 40  # from its checkpoint
    for run in folder.glob("loss.name=*"):
        steps = [r["step"] for r in read_jsonl(run / "stats.jsonl")]
        assert steps == sorted(set(steps)) and steps[-1] == 160  # no step logged (trained) twice
        evals = [(r["metric"], r["checkpoint_step"]) for r in read_jsonl(run / "metrics.jsonl") if "metric" in r]
        assert len(evals) == len(set(evals))


def test_slurm_launcher_through_submitits_local_executor(tmp_path):
    from gankit.study.sweep import sweep

    spec = write_spec(tmp_path, name="slurm", seeds=[0], grid={"loss.name": ["hinge", "lsgan"]},
                      slurm={"partition": "gpu", "gpus_per_trial": 0, "time_minutes": 5, "cpus_per_trial": 1})
    counts = sweep(spec, tmp_path / "out", launcher="slurm", cluster="local", log=lambda _: None)
    assert counts == {"done": 2}
    manifest = yaml.safe_load((tmp_path / "out" / "slurm" / "sweep.yaml").read_text())
    assert all(t["job_id"] for t in manifest["trials"])
    assert any((tmp_path / "out" / "slurm" / ".submitit").rglob("*_result.pkl"))  # submitit's own result path
    proc = run_cli("sweep", str(spec), "--out", str(tmp_path / "other"), "--launcher", "slurm")
    if shutil.which("sbatch") is None:
        assert_user_error(proc, "--launcher slurm needs SLURM's sbatch on PATH")


# ---------------------------------------------------------------------------------------------
# Reports


def test_report_table_matches_the_runs_own_records(tiny_sweep, tmp_path):
    _, _, folder, _ = tiny_sweep
    out = tmp_path / "rep" / "report.html"
    proc = run_cli("report", str(folder), "--out", str(out), "--metric", "modes_covered", check=True)
    assert "loss.name" in proc.stdout and "modes_covered" in proc.stdout  # the rich table
    page = out.read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing fetched
    assert page.count("data:image/png;base64,") >= 4 + 3 * 2  # curves, panel cells, final grids
    rows = {(r["loss.name"], r.get("data", "-")): r for r in csv.DictReader((out.parent / "table.csv").open())}
    assert set(rows) == {("nonsaturating", "-"), ("hinge", "-")}  # the failed setting is listed, not averaged
    assert "2 failed trial(s)" in page and "data=missing,seed=0" in page
    # Independently: the last modes_covered of each seed, straight from metrics.jsonl.
    for loss in ("nonsaturating", "hinge"):
        last = []
        for seed in (0, 1):
            records = [r for r in read_jsonl(folder / f"loss.name={loss},seed={seed}" / "metrics.jsonl")
                       if r.get("metric") == "modes_covered"]
            last.append(max(records, key=lambda r: r["checkpoint_step"])["value"])
        row = rows[(loss, "-")]
        assert float(row["modes_covered (last) mean"]) == pytest.approx(statistics.fmean(last))
        assert float(row["modes_covered (last) std"] or 0) == pytest.approx(statistics.stdev(last))
        assert row["n"] == "2"
    md = (out.parent / "table.md").read_text()
    assert "| loss.name | n |" in md and "modes: 256 samples of G_ema" in md


def test_report_refuses_folders_that_are_not_runs_and_mixed_protocols(tiny_sweep, tmp_path, capsys):
    _, _, folder, _ = tiny_sweep
    (tmp_path / "empty").mkdir()
    assert_user_error(cli_in_process(capsys, "report", str(tmp_path / "empty")), "is neither a run directory")
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(folder / "loss.name=hinge,seed=0", a)
    shutil.copytree(folder / "loss.name=hinge,seed=1", b)
    lines = [json.loads(line) for line in (b / "metrics.jsonl").read_text().splitlines()]
    for record in lines:
        if record.get("group") == "modes":  # the diversity score every evaluation adds stays comparable
            record["n_generated"] = 1000
    (b / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    proc = run_cli("report", str(a), str(b), "--out", str(tmp_path / "r.html"))
    assert_user_error(proc, "modes was measured with different protocols", "1000 samples")
    assert not (tmp_path / "r.html").exists()
    # On another dataset the same metric may have its own protocol: those rows are never compared.
    config = yaml.safe_load((b / "config.yaml").read_text())
    config["data"]["name"] = "grid25"
    (b / "config.yaml").write_text(yaml.safe_dump(config))
    run_cli("report", str(a), str(b), "--out", str(tmp_path / "r.html"), check=True)
    table = (tmp_path / "table.md").read_text()
    assert "1000 samples" in table and "on grid25" in table and "on ring8" in table
    assert_user_error(cli_in_process(capsys, "report", str(a), "--metric", "fid"), "no run has scores named 'fid'")


def test_report_embeds_a_grid_that_fits_as_is_and_shrinks_a_larger_one(tmp_path):
    import base64
    from io import BytesIO

    import numpy as np
    from PIL import Image

    from gankit.study.report import _thumbnail

    rng = np.random.default_rng(0)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    Image.fromarray(rng.integers(0, 255, (182, 182), dtype=np.uint8)).save(small)  # an MNIST grid, grayscale
    Image.fromarray(rng.integers(0, 255, (540, 500, 3), dtype=np.uint8)).save(large)  # a ring scatter plot
    uri = _thumbnail(small, 260)
    assert base64.b64decode(uri.split(",", 1)[1]) == small.read_bytes()  # the file itself, not re-encoded
    for path, size in ((small, 150), (large, 260)):
        with Image.open(BytesIO(base64.b64decode(_thumbnail(path, size).split(",", 1)[1]))) as shown:
            assert max(shown.size) == size and shown.format == "PNG"


# ---------------------------------------------------------------------------------------------
# The report in a real browser: Debian's chromium, driven by playwright.

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _browser_or_skip():
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: install Debian's `chromium` package (make test does so when run as root "
                    "with apt-get) to run the report's browser test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e .[dev]` installs it")
    return sync_playwright


def test_report_in_a_real_browser(tiny_sweep, tmp_path):
    sync_playwright = _browser_or_skip()
    from io import BytesIO

    import numpy as np
    from PIL import Image

    _, _, folder, _ = tiny_sweep
    out = tmp_path / "report.html"
    run_cli("report", str(folder), "--out", str(out), check=True)
    expected = {r["loss.name"]: r for r in csv.DictReader((tmp_path / "table.csv").open())}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        header = page.locator("#comparison thead th").all_inner_texts()
        assert header[:2] == ["loss.name", "n"] and "modes_covered (last) ↑" in header
        col = header.index("modes_covered (last) ↑")
        rows = page.locator("#comparison tbody tr")
        assert rows.count() == 2
        for i in range(2):
            cells = rows.nth(i).locator("td").all_inner_texts()
            row = expected[cells[0]]
            assert cells[1] == "2"
            assert float(cells[col].split("±")[0]) == pytest.approx(float(row["modes_covered (last) mean"]), rel=1e-3)
        assert page.locator("#comparison td.best").count() >= 1
        # Every embedded image decodes.
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("document.images.length") >= 8

        def column(index):
            return [rows.nth(i).locator("td").nth(index).get_attribute("data-sort") for i in range(rows.count())]

        page.locator("#comparison thead th").nth(0).click()
        ascending = column(0)
        assert ascending == sorted(ascending)
        page.locator("#comparison thead th").nth(0).click()
        assert column(0) == ascending[::-1]  # sorting reorders the rows, both ways
        wall = header.index("wall time (s)")
        page.locator("#comparison thead th").nth(wall).click()
        times = [float(v) for v in column(wall)]
        assert times == sorted(times)
        shot = np.asarray(Image.open(BytesIO(page.screenshot(full_page=True))).convert("L"), dtype=float)
        browser.close()
    assert not errors, errors
    assert not requests, requests  # self-contained: nothing fetched from anywhere
    assert shot.shape[0] > 900 and shot.std() > 20 and (shot < 200).mean() > 0.02  # text, tables, figures: not blank
