"""What a researcher reads off a run: captioned grids, class rows, 2-D frames, TensorBoard, collapse flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import config as config_lib
from gankit.errors import GankitError
from gankit.grids import PAD, grid_image, real_extent, scatter_figure
from gankit.sampling import labels_path, sample_to_file
from gankit.utils import read_jsonl

from conftest import assert_user_error, run_cli


def test_grid_puts_class_k_on_row_k_and_a_caption_under_it():
    labels = torch.arange(23) % 5  # classes 0..4, unevenly many (5, 5, 5, 4, 4)
    fake = (labels.float() / 2 - 1).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()  # class k: grey level k/4
    image = np.asarray(grid_image(fake, labels, "step 1500 \u00b7 96.0 kimg").convert("L")).astype(int)
    cell = 8 + PAD
    margin = image.shape[1] - (5 * cell + PAD)  # the left strip that names each row
    assert margin > 0
    for row in range(5):
        centre = image[PAD + row * cell + 4, margin + PAD + 4]
        assert abs(centre - round(row / 4 * 255)) <= 1, (row, centre)
    body_height = 5 * cell + PAD
    assert image.shape[0] > body_height  # the caption strip
    assert (image[body_height:, :] < 128).any()  # with dark text in it
    assert (image[:body_height, :margin] < 128).any()  # and row names


def test_two_d_frames_share_axes_from_the_real_data_and_keep_the_legend_off_the_modes():
    angles = torch.arange(512) * (2 * np.pi / 8)
    real = torch.stack([angles.cos(), angles.sin()], 1).numpy()
    tight, spread = real[:64] * 0.1, real[:64] * 3.0  # two frames of one run, the second far outside
    frames = [scatter_figure(tight, real), scatter_figure(spread, real, "step 20")]
    for fig in frames:
        ax = fig.axes[0]
        assert (*ax.get_xlim(), *ax.get_ylim()) == pytest.approx(real_extent(real))
        real_dots, fake_dots = ax.collections
        assert fake_dots.get_zorder() > real_dots.get_zorder() and fake_dots.get_alpha() < 1
        fig.canvas.draw()
        legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.y1 <= frame.y0 or legend.y0 >= frame.y1 or legend.x1 <= frame.x0  # outside the axes
    assert "64 of 64 generated points lie outside the frame" in frames[1].axes[0].get_title()


@pytest.fixture(scope="module")
def ring_eval_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_cli("train", "gan-ring8", "train.steps=20", "train.log_every=10", "train.sample_every=10",
            "train.checkpoint_every=20", "eval.metrics=[modes]", "eval.every_kimg=2.56", "eval.num_samples=500",
            "--out", str(out), "--name", "r", check=True)
    return out / "r"


def test_tensorboard_holds_eval_scalars_and_sample_images(ring_eval_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(ring_eval_run), size_guidance={"scalars": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"eval/modes_covered", "eval/mode_kl", "eval/diversity", "D/adv", "kimg"} <= set(tags["scalars"])
    scores = {(r["metric"], r["checkpoint_step"]): r["value"] for r in read_jsonl(ring_eval_run / "metrics.jsonl")
              if "metric" in r and "value" in r}
    logged = {(tag[5:], e.step): e.value for tag in tags["scalars"] if tag.startswith("eval/")
              for e in events.Scalars(tag)}
    assert logged.keys() == scores.keys() and {s for _, s in logged} == {10, 20}
    for key, value in logged.items():
        assert value == pytest.approx(scores[key], rel=1e-6)
    images = events.Images("samples")
    assert [i.step for i in images] == [10, 20]
    png = Image.open(ring_eval_run / "samples" / "step-000020.png")
    assert (images[-1].width, images[-1].height) == png.size  # the PNG itself, caption and all
    assert len(list(ring_eval_run.glob("events.out.tfevents.*"))) == 1  # one writer shared by the hooks


def test_forced_collapse_is_flagged_within_two_evaluations(tmp_path):
    """A ring8 GAN trains until its samples spread out, then G is forced to one point: the
    diversity floor flags it at the second evaluation after, and not the low spread of the
    untrained G before."""
    from gankit.training.eval_hook import Evaluator
    from gankit.training.loop import build_run, training_loop

    cfg = config_lib.resolve("gan-ring8", ["train.ema_halflife_kimg=0", "eval.metrics=[modes]", "eval.num_samples=500",
                                           "eval.every_kimg=2.56", "train.steps=10"])  # 256 points a step: every 10
    run = build_run(cfg, tmp_path, torch.device("cpu"))
    evaluator = Evaluator(run)
    first = evaluator.evaluate(run)  # the untrained G: one blob, below the floor, but no collapse yet
    assert next(r["value"] for r in first if r["metric"] == "diversity") < cfg.eval.diversity_floor
    training_loop(run, [evaluator])
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["value"] for r in records if r.get("metric") == "diversity"][-1] >= cfg.eval.diversity_floor
    assert not any(r.get("event") for r in records)

    last = [m for m in run.G.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()  # every z now gives G's bias: one point
    for group in run.opt_G.param_groups:
        group["lr"] = 0.0  # and G stays there
    for steps in (20, 30):
        run.cfg.train.steps = steps
        training_loop(run, [evaluator])
    events = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("event") == "collapse"]
    assert len(events) == 1
    assert (events[0]["metric"], events[0]["collapse_step"], events[0]["detected_step"]) == ("diversity", 20, 30)
    assert events[0]["value"] < 0.01 and "below 0.1" in events[0]["rule"]
    assert (tmp_path / "checkpoints" / "best-before-collapse.pt").is_file()


def test_per_metric_collapse_settings(tmp_path):
    from gankit.training.eval_hook import Evaluator
    from gankit.training.loop import build_run

    cfg = config_lib.resolve("gan-ring8", ["eval.metrics=[modes]", "eval.collapse_factors={mode_kl: 1.5}",
                                           "eval.diversity_floor=0.2"])
    run = build_run(cfg, tmp_path, torch.device("cpu"))
    watched = {name: d for name, d in Evaluator(run).watched}
    assert watched["modes_covered"].factor == 2.0 and watched["mode_kl"].factor == 1.5
    assert watched["diversity"].floor == 0.2
    with pytest.raises(GankitError, match="not a score"):
        Evaluator(build_run(config_lib.with_overrides(cfg, ["eval.collapse_factors={fdi: 3}"]), tmp_path,
                            torch.device("cpu")))
    with pytest.raises(GankitError, match="more than 1"):
        config_lib.with_overrides(cfg, ["eval.collapse_factors={mode_kl: 0.5}"])


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_cli("train", "cgan-mnist", "train.steps=2", "model.width=8", "train.batch_size=16", "--out", str(out),
            "--name", "c", check=True)
    return out / "c"


def test_conditional_grid_in_training_has_a_row_per_class(cgan_run):
    image = Image.open(cgan_run / "samples" / "step-000002.png")
    assert image.height > 10 * (28 + PAD) + PAD  # 10 rows of digits and the caption strip
    assert image.height < 11 * (28 + PAD)


def test_sample_chosen_classes(cgan_run, tmp_path):
    proc = run_cli("sample", str(cgan_run), "--n", "6", "--labels", "3,5", "--out", str(tmp_path / "a.npy"),
                   check=True)
    assert "a.npy" in proc.stdout
    assert np.load(tmp_path / "a.npy").shape == (6, 1, 28, 28)
    assert np.load(tmp_path / "a.labels.npy").tolist() == [3, 5, 3, 5, 3, 5]
    sample_to_file(cgan_run, 4, tmp_path / "b.npy", classes=[7])
    assert np.load(labels_path(tmp_path / "b.npy")).tolist() == [7] * 4
    sample_to_file(cgan_run, 8, tmp_path / "c.png", classes=[0, 1])
    assert Image.open(tmp_path / "c.png").height < 3 * (28 + PAD) + 40  # two rows and a caption
    assert_user_error(run_cli("sample", str(cgan_run), "--n", "4", "--class", "10", "--out", str(tmp_path / "d.png")),
                      "class 10 is not one of this run's 10 classes")
    assert not (tmp_path / "d.png").exists()


def test_class_on_an_unconditional_run(ring_eval_run, tmp_path):
    with pytest.raises(GankitError, match="unconditional model"):
        sample_to_file(ring_eval_run, 4, tmp_path / "x.png", classes=[1])


def test_metrics_jsonl_and_command_txt_explain_the_run(ring_eval_run):
    command = (ring_eval_run / "command.txt").read_text()
    assert "gankit train gan-ring8 train.steps=20" in command and f"torch {torch.__version__}" in command
    diversity = [r for r in read_jsonl(ring_eval_run / "metrics.jsonl") if r.get("metric") == "diversity"]
    assert diversity and diversity[0]["real_mean_distance"] > 0 and json.dumps(diversity[0])


def test_gankit_eval_scores_diversity(ring_eval_run):
    from gankit.metrics.evaluate import evaluate_checkpoint

    (record,) = evaluate_checkpoint(ring_eval_run, ["diversity"], n=300, write=False)
    assert record["metric"] == "diversity" and 0 < record["value"] < 3 and record["backbone"] is None
