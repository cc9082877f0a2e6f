"""Evaluation in a run: the training hook, best checkpoint, collapse record, and `gankit eval`."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from gankit import config as config_lib
from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics.stats import SingularCovarianceWarning
from gankit.training.hooks import Hook
from gankit.training.loop import build_run, default_hooks, resume, train, training_loop
from gankit.utils import read_jsonl

from conftest import assert_user_error

PROTOCOL = ("metric", "value", "n_generated", "n_reference", "reference_split", "backbone", "weights_hash",
            "resize", "network", "checkpoint_step", "kimg", "seed", "seconds")


def test_ring8_run_scores_modes_keeps_best_and_gankit_eval_reads_it(tmp_path, cli, capsys):
    cfg = config_lib.resolve("gan-ring8", [
        "train.steps=30", "train.batch_size=64", "train.log_every=10", "train.sample_every=30",
        "train.checkpoint_every=10", "eval.metrics=[modes]", "eval.every_kimg=0.64", "eval.num_samples=400",
        f"eval.cache_dir={tmp_path / 'cache'}"])
    run_dir = train(cfg, tmp_path / "run")
    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "metric" in r]
    steps = sorted({r["checkpoint_step"] for r in records})
    assert steps == [10, 20, 30]  # every 640 images = 10 steps of 64
    for record in records:
        assert all(key in record for key in PROTOCOL), record
        assert record["network"] == "G_ema" and record["n_generated"] == 400 and record["source"] == "training"
    covered = [r for r in records if r["metric"] == "modes_covered"]
    assert all(0 <= r["value"] <= 8 for r in covered) and covered[0]["num_modes"] == 8
    best = max(covered, key=lambda r: (r["value"], -r["checkpoint_step"]))  # first of the best values
    payload = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert payload["step"] == best["checkpoint_step"]
    assert (run_dir / "plots" / "metrics.png").stat().st_size > 1000

    main(["eval", str(run_dir), "--checkpoint", "best", "--n", "300"])  # the run's own metrics; in-process: quick
    out = capsys.readouterr().out
    assert "modes_covered" in out and "mode_kl" in out and "appended 3 records" in out
    added = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("source") == "gankit eval"]
    assert {r["metric"] for r in added} == {"modes_covered", "high_quality_pct", "mode_kl"}
    assert all(r["checkpoint_step"] == best["checkpoint_step"] and r["n_generated"] == 300 for r in added)

    before = (run_dir / "metrics.jsonl").read_text()
    # the real CLI once, for its exit code and stderr; the other mistakes in-process
    assert_user_error(cli("eval", str(run_dir), "--metrics", "modes", "--checkpoint", "7"), "no checkpoint at step 7")
    for args, fragment in ((["--metrics", "fid"], "fid measures images"),
                           (["--metrics", "fdi"], "did you mean 'fid'"),
                           (["--checkpoint", "best", "--n", "0"], "--n must be positive")):
        with pytest.raises(SystemExit) as info:
            main(["eval", str(run_dir), *args])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith("error: ") and fragment in err, err
    assert (run_dir / "metrics.jsonl").read_text() == before  # a mistake writes nothing


def test_collapse_is_recorded_with_the_best_checkpoint_before_it(tmp_path):
    from gankit.training.eval_hook import Evaluator

    cfg = config_lib.resolve("gan-ring8", ["eval.metrics=[modes]", "eval.best_metric=mode_kl",
                                           "eval.collapse_patience=2"])
    run = build_run(cfg, tmp_path, torch.device("cpu"))
    hook = Evaluator(run)
    for step, kl in [(100, 0.5), (200, 0.2), (300, 0.3), (400, 0.9), (500, 1.5), (600, 0.1)]:
        run.step, run.images_seen = step, step * 256
        hook._best_and_collapse(run, [{"metric": "mode_kl", "value": kl}])
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    before = torch.load(tmp_path / "checkpoints" / "best-before-collapse.pt", weights_only=True)
    assert best["step"] == 600 and before["step"] == 200
    (event,) = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("event") == "collapse"]
    assert event["collapse_step"] == 400 and event["detected_step"] == 500 and event["best_value"] == 0.2


def test_dcgan_run_scores_classifier_fid_and_is(tmp_path, mnist_classifier):
    cache, _, _ = mnist_classifier
    cfg = config_lib.resolve("dcgan-mnist", [
        "train.steps=4", "train.batch_size=16", "model.width=8", "train.log_every=2", "train.sample_every=4",
        "train.checkpoint_every=4", "eval.metrics=cfid,cis", "eval.every_kimg=0.032", "eval.num_samples=100",
        "eval.num_reference=200", f"eval.cache_dir={cache}"])
    run_dir = train(cfg, tmp_path / "run")
    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "metric" in r]
    assert {r["checkpoint_step"] for r in records} == {2, 4}
    cfid = [r for r in records if r["metric"] == "cfid"]
    assert all(r["backbone"] == "classifier:mnist5k" and r["n_reference"] == 200 for r in cfid)
    assert all(r["value"] > 0 for r in cfid)
    assert json.loads(json.dumps(records))  # plain JSON all through


def test_gankit_eval_inception_metrics_carry_their_protocol_and_repeat_exactly(tmp_path, random_inception, capsys):
    cfg = config_lib.resolve("dcgan-mnist", [
        "train.steps=2", "train.batch_size=8", "model.width=8", "train.log_every=1", "train.sample_every=2",
        "train.checkpoint_every=2", "eval.num_samples=12", f"eval.cache_dir={tmp_path / 'cache'}"])
    run_dir = train(cfg, tmp_path / "run")
    args = ["eval", str(run_dir), "--metrics", "fid,is,kid", "--ref", "test",
            "--inception-weights", str(random_inception)]
    with pytest.warns(SingularCovarianceWarning):  # 12 samples in 2048-d, on purpose: the test is the protocol
        main(args)
    assert "fid" in capsys.readouterr().out
    references = list((tmp_path / "cache").rglob("*inception*"))
    assert len(references) == 1  # the test split's statistics, cached under their key
    written = references[0].stat().st_mtime_ns
    with pytest.warns(SingularCovarianceWarning):
        main(args)  # the same command again reads that cache and must give the same numbers
    assert references[0].stat().st_mtime_ns == written
    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("source") == "gankit eval"]
    first, second = records[:len(records) // 2], records[len(records) // 2:]
    assert {r["metric"] for r in first} == {"fid", "is", "is_std", "kid", "kid_std"}
    assert [r["value"] for r in first] == [r["value"] for r in second]
    weights_hash = hashlib.sha256(random_inception.read_bytes()).hexdigest()[:16]
    for record in first:
        assert all(key in record for key in PROTOCOL), record
        assert record["backbone"] == "inception-2015-12-05" and record["weights_hash"] == weights_hash
        assert record["n_generated"] == 12 and record["checkpoint_step"] == 2
        if record["metric"].startswith("is"):  # IS scores generated images alone
            assert record["reference_split"] is None and record["n_reference"] is None
        else:
            assert record["reference_split"] == "test" and record["n_reference"] == 12
        assert record["resize"].startswith("tf1-bilinear-299")


def test_classifier_command_refuses_unlabelled_data_and_bad_epochs(tmp_path, capsys):
    for args, fragment in ((["--data", "ring8"], "has no labels"), (["--data", "mnist5k", "--epochs", "0"],
                                                                    "--epochs must be positive")):
        with pytest.raises(SystemExit) as info:
            main(["classifier", "train", *args, "--out", str(tmp_path / "c.pt")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith("error: ") and fragment in err, err
    assert not (tmp_path / "c.pt").exists()


class DeleteAtStep(Hook):
    """Removes a file after a given step: a scratch disk purged while the run trained."""

    def __init__(self, path, step):
        self.path, self.step = path, step

    def on_step(self, run) -> None:
        if run.step == self.step:
            self.path.unlink()


def test_a_failed_end_of_run_evaluation_still_saves_the_last_step_and_resume_evaluates(tmp_path, random_inception):
    weights = tmp_path / "inception.pth"
    shutil.copy(random_inception, weights)
    cfg = config_lib.resolve("dcgan-mnist", [
        "train.steps=3", "train.batch_size=8", "model.width=8", "train.log_every=1", "train.sample_every=1000",
        "train.checkpoint_every=2", "eval.metrics=[kid]", "eval.num_samples=12", "eval.reference_split=test",
        f"eval.inception_weights={weights}", f"eval.cache_dir={tmp_path / 'cache'}"])
    run_dir = tmp_path / "run"
    run = build_run(cfg, run_dir, torch.device("cpu"))
    hooks = default_hooks(run)  # the evaluator finds the weights here, at the start
    with pytest.raises(GankitError, match="no Inception weights at"):
        training_loop(run, [DeleteAtStep(weights, 3), *hooks])
    # The evaluation at the end failed, yet the checkpointer after it saved step 3, not only step 2.
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["step"] == 3
    assert not [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("metric") == "kid"]
    shutil.copy(random_inception, weights)
    resume(run_dir)  # nothing left to train: the end-of-run evaluation is done again
    kid = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("metric") == "kid"]
    assert [r["checkpoint_step"] for r in kid] == [3] and kid[0]["n_generated"] == 12


def test_a_failed_periodic_evaluation_saves_its_step_and_the_resumed_run_makes_it(tmp_path, random_inception, capsys):
    weights = tmp_path / "inception.pth"
    shutil.copy(random_inception, weights)
    cfg = config_lib.resolve("dcgan-mnist", [
        "train.steps=4", "train.batch_size=8", "model.width=8", "train.log_every=1", "train.sample_every=1000",
        "train.checkpoint_every=1000", "eval.metrics=[kid]", "eval.num_samples=12", "eval.every_kimg=0.016",
        "eval.reference_split=test", f"eval.inception_weights={weights}", f"eval.cache_dir={tmp_path / 'cache'}"])
    run_dir = tmp_path / "run"
    run = build_run(cfg, run_dir, torch.device("cpu"))
    hooks = default_hooks(run)
    with pytest.raises(GankitError, match="no Inception weights at"):
        training_loop(run, [DeleteAtStep(weights, 2), *hooks])  # the evaluation due at step 2 (16 images) fails
    # No periodic checkpoint was due (every 1,000 steps), yet step 2 is kept, and the failure is on record.
    saved = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["step"] == 2 and saved["images_seen"] == 16
    failed = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("event") == "evaluation_failed"]
    assert [r["checkpoint_step"] for r in failed] == [2] and "no Inception weights at" in failed[0]["error"]
    assert "checkpoints/latest.pt holds that step" in capsys.readouterr().err
    shutil.copy(random_inception, weights)
    resume(run_dir)
    # The missed evaluation is made after the first resumed step (3); step 4's is the next one due (32 images).
    kid = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("metric") == "kid"]
    assert [r["checkpoint_step"] for r in kid] == [3, 4]
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4
