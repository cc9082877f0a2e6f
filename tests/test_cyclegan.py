"""CycleGAN: the paper's networks, losses and pool checked against hand-worked values, exact
resume with pools and lr schedule, the sample grid rows, `gankit translate`, translation metrics,
and the bad inputs of issue 11."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.config import ModelConfig
from gankit.losses import build_objective
from gankit.losses.cyclegan import ImagePool
from gankit.nets import Nets, build_nets
from gankit.nets.cyclegan import PatchDiscriminator, ResidualBlock, ResnetGenerator
from gankit.training.hooks import Hook
from gankit.training.loop import build_run, default_hooks, resume, train, training_loop
from gankit.utils import read_jsonl

from conftest import assert_user_error
from fakedata import write_image_folder, write_unpaired

# A CycleGAN small enough for tests: 4 channels at the top, 24 px (the smallest side the 70x70
# PatchGAN's five 4x4 convs leave a logit at), one residual block.
TINY = ["model.width=4", "model.resnet_blocks=1", "data.resolution=24", "train.batch_size=4",
        "train.log_every=1", "train.sample_every=100", "train.checkpoint_every=100", "eval.metrics=[]"]


def receptive_field(layers) -> int:
    """Receptive field of a stack of convs, from the back: r <- (r - 1) * stride + kernel."""
    r = 1
    for conv in reversed([m for m in layers if isinstance(m, nn.Conv2d)]):
        r = (r - 1) * conv.stride[0] + conv.kernel_size[0]
    return r


def test_patchgan_is_the_70x70_one():
    D = PatchDiscriminator(3, 64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1] and all(c.kernel_size == (4, 4) for c in convs)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert receptive_field(D.modules()) == 70
    assert not isinstance(list(D.net)[1], nn.InstanceNorm2d)  # no norm after the first conv
    assert D(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # the paper's 30x30 patch map at 256 px


@pytest.mark.parametrize("side, blocks", [(256, 9), (128, 6), (64, 6)])
def test_resnet_generator_follows_the_paper(side, blocks):
    nets = build_nets(ModelConfig(name="cyclegan", width=8), (3, side, side), 2)
    G = nets.G.G_AB
    layers = list(G.net)
    assert isinstance(layers[0], nn.ReflectionPad2d) and layers[1].kernel_size == (7, 7)
    assert sum(isinstance(m, ResidualBlock) for m in layers) == blocks
    assert [m.stride[0] for m in layers if type(m) is nn.Conv2d and m.kernel_size == (3, 3)] == [2, 2]
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in layers) == 2
    assert isinstance(layers[-1], nn.Tanh)
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert build_nets(ModelConfig(name="cyclegan", width=8, resnet_blocks=3), (3, 64, 64), 2).G.G_AB.net \
        .__len__() == len(ResnetGenerator(3, 8, 3).net)


class Shift(nn.Module):
    def __init__(self, amount):
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return x + self.amount


def test_cyclegan_terms_match_hand_computed_values():
    """G_AB(x) = x + 0.1, G_BA(x) = x - 0.3 and both D = identity (a patch logit per pixel): every
    term of eq. 1-3 then has a closed form."""
    cfg = config_lib.resolve("cyclegan-digits", ["loss.pool_size=0"])
    objective = build_objective(cfg, (1, 2, 2), 2)
    G, D = nn.Module(), nn.Module()
    G.G_AB, G.G_BA, D.D_A, D.D_B = Shift(0.1), Shift(-0.3), nn.Identity(), nn.Identity()
    nets = Nets(G=G, D=D)
    a, b = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), -0.2)
    batch = objective.make_batch(nets, torch.cat([a, b]), torch.tensor([0, 1]), torch.Generator())
    assert torch.allclose(batch.fake, torch.cat([a + 0.1, b - 0.3]))
    d = objective.discriminator(nets, batch.detached())
    # D_A: real a = 0.5, fake G_BA(b) = -0.5; D_B: real b = -0.2, fake G_AB(a) = 0.6.
    assert d["D/A"].item() == pytest.approx(0.5 * ((0.5 - 1) ** 2 + (-0.5) ** 2))
    assert d["D/B"].item() == pytest.approx(0.5 * ((-0.2 - 1) ** 2 + 0.6 ** 2))
    g = objective.generator(nets, batch)
    assert g["G/adv"].item() == pytest.approx((0.6 - 1) ** 2 + (-0.5 - 1) ** 2)
    # Both cycles come back 0.2 off (+0.1 - 0.3); identity: G_AB(b) is 0.1 off, G_BA(a) 0.3 off.
    assert g["G/cycle"].item() == pytest.approx(10 * (0.2 + 0.2))
    assert g["G/identity"].item() == pytest.approx(5 * (0.1 + 0.3))


def test_image_pool_keeps_fifty_and_swaps_half():
    torch.manual_seed(0)
    pool = ImagePool(50)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: every fake goes in and comes out
    new = -1.0 - torch.arange(2000.0).view(2000, 1, 1, 1)  # every fake distinct
    out = pool.query(new)
    swapped = (out != new).flatten()
    assert 0.45 < swapped.float().mean() < 0.55  # an older fake with probability 1/2
    older = out[swapped].flatten()
    # What comes back instead is a fake seen before: one of the first 50, or an earlier new one.
    assert all(v >= 0 or -v - 1 < i for v, i in zip(older.tolist(), swapped.nonzero().flatten().tolist(),
                                                       strict=True))
    assert len(pool.images) == 50
    copy = ImagePool(50)
    copy.load_state_dict(pool.state_dict())
    assert torch.equal(copy.images, pool.images)


class Crash(Exception):
    pass


class CrashAt(Hook):
    def __init__(self, step):
        self.step = step

    def on_step(self, run):
        if run.step == self.step:
            raise Crash


# About 9 s alone under load, most of it importing torch's optimizer machinery and scikit-learn, which
# a full pytest session has done already: cheap enough for `make test`.
def test_cyclegan_resumes_exactly_with_pools_and_lr_schedule(tmp_path):
    """A 4-step run with linear lr decay, killed after its step-2 checkpoint and resumed, ends
    bit-identical to one that never stopped: weights, Adam moments, both pools and the lr."""
    cfg = config_lib.resolve("cyclegan-digits", TINY + ["loss.pool_size=3", "train.lr_schedule=linear",
                                                         "train.checkpoint_every=2", "train.steps=4"])
    train(cfg, tmp_path / "straight")
    run = build_run(cfg, tmp_path / "stopped", torch.device("cpu"))
    with pytest.raises(Crash):
        training_loop(run, default_hooks(run) + [CrashAt(2)])
    resume(tmp_path / "stopped")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    b = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == 4
    for key in ("G", "D", "G_ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    for pid, state in a["opt_G"]["state"].items():
        assert torch.equal(state["exp_avg"], b["opt_G"]["state"][pid]["exp_avg"])
    for domain in ("pool_A", "pool_B"):
        assert len(a["objective"][domain]["images"]) == 3
        assert torch.equal(a["objective"][domain]["images"], b["objective"][domain]["images"])
    lrs = [[r["lr_G"] for r in read_jsonl(tmp_path / run / "stats.jsonl")] for run in ("straight", "stopped")]
    assert lrs[0] == lrs[1] and len(lrs[0]) == 4 and lrs[0][3] < lrs[0][0]  # the decay resumed where it was


def test_preview_rows_are_translation_and_reconstruction():
    cfg = config_lib.resolve("cyclegan-digits", TINY + ["train.grid_samples=9"])
    run = build_run(cfg, None, torch.device("cpu"))
    a, b = run.preview_inputs["A"], run.preview_inputs["B"]
    assert a.shape == b.shape == (3, 1, 24, 24)  # sqrt(9) test images of each domain
    images, labels, nrow = run.objective.preview(run.G_ema, run.preview_inputs)
    assert nrow == 3 and labels is None and images.shape == (18, 1, 24, 24)
    G = run.G_ema
    with torch.no_grad():
        expected = [a, G.G_AB(a), G.G_BA(G.G_AB(a)), b, G.G_BA(b), G.G_AB(G.G_BA(b))]
    for row, want in zip(images.split(3), expected, strict=True):
        torch.testing.assert_close(row, want)


def test_instance_norm_trains_with_batches_above_one():
    cfg = config_lib.resolve("cyclegan-digits", TINY + ["train.steps=1", "train.batch_size=8"])
    run = build_run(cfg, None, torch.device("cpu"))
    training_loop(run, [])
    assert run.step == 1 and all(torch.isfinite(p).all() for p in run.G.parameters())


def test_translate_and_eval_a_cyclegan_run_through_the_cli(tmp_path, capsys, random_inception):
    write_unpaired(tmp_path / "u", n_a=6, n_b=6)
    run_dir = tmp_path / "runs" / "c"
    main(["train", "cyclegan-horse2zebra", *TINY, "train.steps=2", f"data.path={tmp_path / 'u'}",
          f"data.root={tmp_path}", "data.num_workers=0", "--out", str(tmp_path / "runs"), "--name", "c"])
    assert (run_dir / "samples" / "step-000002.png").is_file()
    grid = Image.open(run_dir / "samples" / "step-000002.png")
    # Six rows (A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B))) of 24 px cells, then the caption strip.
    assert 6 * (24 + 2) + 2 < grid.size[1] < 7 * (24 + 2) + 2

    main(["translate", str(run_dir), "--input", str(tmp_path / "u" / "testA"), "--direction", "AtoB",
          "--out", str(tmp_path / "out")])
    inputs = sorted(p.name for p in (tmp_path / "u" / "testA").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == inputs
    assert Image.open(tmp_path / "out" / inputs[0]).size == (24, 24)

    main(["eval", str(run_dir), "--metrics", "kid", "--inception-weights", str(random_inception)])
    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("source") == "gankit eval"]
    by_metric = {r["metric"]: r for r in records}
    assert {"kid/AtoB", "kid/BtoA"} <= set(by_metric)
    for direction in ("AtoB", "BtoA"):
        record = by_metric[f"kid/{direction}"]
        # 4 translated test images against the target domain's 4 test images, protocol stored.
        assert record["direction"] == direction and record["n_generated"] == 4 and record["n_reference"] == 4
        assert record["reference_split"] == "test" and record["dataset"] == "unpaired"


def test_label_preservation_of_real_digits_is_the_classifiers_accuracy(tmp_path):
    """Scored on the untranslated test digits with their own labels, the metric must equal the
    accuracy `gankit classifier train` measured on the same split with its own code."""
    from gankit.config import DataConfig, EvalConfig
    from gankit.data import build_dataset
    from gankit.data.base import to_unit_range
    from gankit.metrics.classifier import train_classifier
    from gankit.metrics.evaluate import Evaluation, score

    data = DataConfig(name="digits2mnist", domain="A", resolution=24)
    out = tmp_path / "classifiers" / "digits2mnist-A-24px-1ch.pt"
    meta = train_classifier(data, out, epochs=1, log=lambda *_: None)
    test = build_dataset(DataConfig(name="digits2mnist", domain="A", resolution=24, split="test"))
    ev = Evaluation(to_unit_range(test.images), data, EvalConfig(cache_dir=str(tmp_path)), labels=test.labels)
    (record,) = score(ev, ["label_preservation"])
    assert record["value"] == pytest.approx(meta["test_accuracy"]) and record["value"] > 0.5
    assert record["backbone"] == "classifier:digits2mnist/A"


@pytest.mark.parametrize("args, fragment", [
    (["train.batch_size=3"], "train.batch_size must be even"),
    (["loss.name=nonsaturating"], "needs loss.name=cyclegan"),
    (["model.name=dcgan", "data.resolution=32"], "use model.name=cyclegan"),
])
def test_bad_cyclegan_settings_are_one_sentence(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as info:
        main(["train", "cyclegan-digits", *TINY, *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: ") and fragment in err and len(err.splitlines()) == 1, err


def test_bad_translation_inputs_are_one_sentence(tmp_path, cli, capsys):
    write_unpaired(tmp_path / "u", n_a=4, n_b=4)
    for sub in ("trainB",):
        for f in (tmp_path / "u" / sub).iterdir():
            f.unlink()
    # The real CLI once: an unpaired folder with one side empty.
    assert_user_error(cli("train", "cyclegan-horse2zebra", *TINY, f"data.path={tmp_path / 'u'}",
                          f"data.root={tmp_path}", "--out", str(tmp_path / "runs")), "trainB", "domain B is empty")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

    noise_run = tmp_path / "noise"
    train(config_lib.resolve("gan-ring8", ["train.steps=1", "train.batch_size=8"]), noise_run)
    write_image_folder(tmp_path / "imgs", 2, seed=5)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png at all")
    cyclegan_run = tmp_path / "runs" / "c"
    train(config_lib.resolve("cyclegan-digits", TINY + ["train.steps=1"]), cyclegan_run)
    capsys.readouterr()  # the two runs' progress lines
    cases = [
        ([str(noise_run), "--input", str(tmp_path / "imgs")], "translate needs a translation model"),
        ([str(cyclegan_run), "--input", str(tmp_path / "imgs")], "broken.png cannot be decoded"),
        ([str(cyclegan_run), "--input", str(tmp_path / "nothing")], "does not exist"),
    ]
    for args, fragment in cases:
        with pytest.raises(SystemExit) as info:
            main(["translate", *args, "--direction", "AtoB", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.startswith("error: ") and fragment in err, err
    with pytest.raises(SystemExit):
        main(["translate", str(cyclegan_run), "--input", str(tmp_path / "imgs"), "--direction", "AtoB",
              "--out", str(tmp_path / "imgs")])
    assert "overwrite the inputs" in capsys.readouterr().err
    assert len(list((tmp_path / "imgs").iterdir())) == 3  # nothing of the user's was touched


def test_digits_domains_are_the_real_datasets():
    from gankit.config import DataConfig
    from gankit.data import build_dataset

    both = build_dataset(DataConfig(name="digits2mnist", resolution=32))
    assert (len(both.a), len(both.b)) == (1618, 4500) and both.num_classes == 2
    a = build_dataset(DataConfig(name="digits2mnist", resolution=32, domain="A", split="test"))
    assert len(a) == 179 and a.num_classes == 10 and a.images.shape[1:] == (1, 32, 32)
    counts = np.bincount(a.labels.numpy())
    assert len(counts) == 10 and counts.min() >= 10  # all ten digits in the test split
    # Ink is bright on dark in both domains, as the classifiers expect.
    assert a.images.float().mean() < 100 and both.b.images.float().mean() < 100
    loader = both.loader(4, 0, torch.device("cpu"))
    real, labels = loader.next()
    assert real.shape == (4, 1, 32, 32) and labels.tolist() == [0, 0, 1, 1]  # half A, half B
