"""train.precision: bf16 autocast, and fp16 with one GradScaler per network, on CPU.

torch 2.14 runs float16 autocast and GradScaler("cpu") on CPU, so the fp16 path is tested here
as it runs on a GPU (where the same code uses "cuda").
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.errors import GankitError
from gankit.nets import Nets
from gankit.penalties import input_gradient
from gankit.training.distributed import Engine
from gankit.training.hooks import LossMeter
from gankit.training.loop import train
from gankit.training.precision import Precision
from gankit.utils import read_jsonl


class TwoLayerCritic(nn.Module):
    """D(x) = w2 * (w1 . x): its input gradient is w2 * w1, small enough to vanish in float16."""

    def __init__(self, w1: float, w2: float):
        super().__init__()
        self.a, self.b = nn.Linear(4, 1, bias=False), nn.Linear(1, 1, bias=False)
        nn.init.constant_(self.a.weight, w1)
        nn.init.constant_(self.b.weight, w2)

    def forward(self, x, labels=None):
        return self.b(self.a(x)).squeeze(1)


def test_fp16_penalty_gradient_is_scaled_before_and_unscaled_after():
    # The true input gradient is 1e-4 * 1e-4 = 1e-8 per pixel: below float16's smallest subnormal
    # (6e-8), so without loss scaling the penalty would see exactly 0.
    # The scaler starts at 2**16, above float16's largest value, so a penalty's first scaled
    # gradients may overflow; that step is then skipped like any non-finite one (next test) and
    # the scale halved. Here it starts where it has settled.
    nets = Nets(G=nn.Identity(), D=TwoLayerCritic(1e-4, 1e-4))
    x = torch.randn(8, 4)
    precision = Precision("fp16", torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    with precision.autocast():
        plain = input_gradient(nets, x, None)
        scaled = input_gradient(nets, x, None, scaler)
    assert torch.count_nonzero(plain) == 0
    torch.testing.assert_close(scaled, torch.full((8, 4), 1e-8), rtol=1e-2, atol=0)
    assert scaled.dtype == torch.float32


def test_fp16_skips_a_non_finite_step_and_lowers_the_scale():
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    precision = Precision("fp16", torch.device("cpu"))
    before = [p.detach().clone() for p in net.parameters()]
    scale = precision.scalers["D"].get_scale()
    with precision.autocast():
        loss = net(torch.full((2, 4), 1e5)).float().pow(2).mean() * 1e30  # overflows to inf
    precision.backward(loss, "D")
    precision.step(opt, "D")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # skipped
    assert precision.scalers["D"].get_scale() == scale / 2
    assert precision.scalers["G"].get_scale() == scale  # G's scaler is its own
    opt.zero_grad()
    with precision.autocast():
        loss = net(torch.randn(2, 4)).float().pow(2).mean()
    precision.backward(loss, "D")
    precision.step(opt, "D")
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # finite: taken


@pytest.mark.parametrize("precision, preset, overrides", [
    ("fp16", "wgan-gp-ring8", ["model.width=16", "train.batch_size=32", "train.discriminator_steps=2"]),
    ("fp16", "dcgan-mnist", ["model.width=4", "train.batch_size=8", "loss.penalties=[r1]", "loss.r1_every=2"]),
    ("bf16", "dcgan-mnist", ["model.width=4", "train.batch_size=8", "loss.penalties=[r1]", "loss.r1_every=2"]),
])
def test_mixed_precision_trains_through_the_loop(tmp_path, precision, preset, overrides):
    cfg = config_lib.resolve(preset, overrides + [f"train.precision={precision}", "train.steps=4", "train.log_every=2",
                                                  "train.checkpoint_every=4"])
    run = train(cfg, tmp_path / "run")
    payload = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert set(payload["precision"]) == {"G", "D"}
    assert all(bool(state) == (precision == "fp16") for state in payload["precision"].values())  # scalers: fp16
    assert all(torch.isfinite(v).all() for v in payload["G"].values())
    assert all(v.dtype == torch.float32 for v in payload["G"].values() if v.is_floating_point())  # fp32 weights
    stats = read_jsonl(run / "stats.jsonl")
    assert all(isinstance(v, float) for r in stats for k, v in r.items() if k.startswith(("D/", "G/")))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_loss_meter_averages_half_precision_terms_exactly(dtype):
    """Under autocast the loss terms are bfloat16 or float16. Summed in their own dtype, 3,000
    terms of 1.0 stop growing at 256 (bf16) or 2,048 (fp16), so the logged mean would be 0.085
    or 0.68; the meter sums in float32."""
    meter = LossMeter()
    for _ in range(3000):
        meter.add({"D/adv": torch.tensor(1.0, dtype=dtype)})
    assert meter.summary() == {"D/adv": 1.0}


@pytest.mark.slow
def test_bf16_reaches_the_mode_coverage_of_fp32_on_the_ring(tmp_path):
    """The wgan-gp-ring8 preset as shipped (2,000 steps; a few minutes here, hence slow): bf16
    covers the same modes as fp32, scored by the same mode metric. Fewer steps prove nothing:
    after 100 steps both cover 3 of 8 modes."""
    covered = {}
    for precision in ("fp32", "bf16"):
        cfg = config_lib.resolve("wgan-gp-ring8", [f"train.precision={precision}", "eval.metrics=[modes]",
                                                   "eval.num_samples=2000"])
        run = train(cfg, tmp_path / precision)
        covered[precision] = next(r["value"] for r in read_jsonl(run / "metrics.jsonl")
                                  if r.get("metric") == "modes_covered")
    assert covered["bf16"] == covered["fp32"] == 8, covered


def test_precision_and_sync_batchnorm_are_checked():
    with pytest.raises(GankitError, match="train.precision must be fp32, bf16 or fp16, not 'fp8'"):
        config_lib.resolve("gan-ring8", ["train.precision=fp8"])
    with pytest.raises(GankitError, match="sync_batchnorm=true needs CUDA"):
        Engine(device="cpu", sync_batchnorm=True)


def test_fp16_penalty_overflow_skips_the_step_and_logs_no_inf():
    """At the scaler's first scale (2**16, above float16's largest value) R1's scaled input
    gradient overflows: the step is skipped and the scale halved, and the logged term is 0, not
    inf, so the divergence guard does not stop a healthy run. The next step is taken."""
    from gankit.config import LossConfig
    from gankit.losses import Batch
    from gankit.penalties import build_penalties

    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    nets = Nets(G=nn.Identity(), D=lambda x, labels=None: critic(x).squeeze(1))
    (penalty,) = build_penalties(LossConfig(penalties=["r1"], r1_every=1))
    precision = Precision("fp16", torch.device("cpu"))
    penalty.grad_scaler = precision.scalers["D"]
    opt = torch.optim.Adam(critic.parameters())
    values, scales, changed = [], [], []
    for _ in range(2):
        before = [p.detach().clone() for p in critic.parameters()]
        with precision.autocast():
            term = penalty(nets, Batch(real=torch.randn(8, 4), fake=None, z=None, labels=None), 0)["D/r1"]
        precision.backward(term, "D")
        precision.step(opt, "D")
        opt.zero_grad()
        values.append(term.item())
        scales.append(precision.scalers["D"].get_scale())
        changed.append(not all(torch.equal(a, b) for a, b in zip(before, critic.parameters(), strict=True)))
    assert values[0] == 0.0 and values[1] > 0 and scales == [2.0**15, 2.0**15] and changed == [False, True]
