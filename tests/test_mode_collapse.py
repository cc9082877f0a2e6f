"""The pieces behind the mode-collapse table: the mixtures' means, the modes metric against a
hand-written loop over the protocol, PacGAN's maxout D, and VEEGAN's Gaussian reconstructor."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit.config import DataConfig, LossConfig, ModelConfig
from gankit.data import build_dataset
from gankit.losses import Batch, build_loss
from gankit.metrics.modes2d import mode_metrics
from gankit.nets import build_nets
from gankit.nets.maxout import Maxout


def test_ring_has_eight_distinct_modes_at_angles_2pi_k_over_8():
    # Not the linspace(0, 2*pi, 8) ring of the Unrolled GAN notebook, whose first and last coincide.
    means = build_dataset(DataConfig(name="ring8")).means.double()
    angles = torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8
    expected = torch.stack([angles.cos(), angles.sin()], 1)
    assert torch.allclose(means, expected, atol=1e-6)
    assert torch.pdist(means).min() > 0.76  # neighbours 2 sin(pi/8) = 0.765 apart


def test_grid_has_twenty_five_modes_on_the_even_lattice():
    means = build_dataset(DataConfig(name="grid25")).means
    assert sorted({tuple(m) for m in means.tolist()}) == [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]


def _protocol_by_hand(samples, means, std):
    """PacGAN's MetricLogger as a plain loop: nearest mode, 3-sigma test, histogram."""
    counts = [0] * len(means)
    for point in samples.tolist():
        dists = [math.dist(point, m) for m in means.tolist()]
        j = min(range(len(dists)), key=dists.__getitem__)
        if dists[j] / std < 3:
            counts[j] += 1
    good = sum(counts)
    kl = sum(c / good * math.log(c / good * len(means)) for c in counts if c) if good else math.log(len(means))
    return sum(c > 0 for c in counts), 100 * good / len(samples), kl


def test_modes_metric_follows_the_protocol():
    ring = build_dataset(DataConfig(name="ring8"))
    gen = torch.Generator().manual_seed(0)
    # Uneven mode weights, some exact points, and spread so that some samples miss every mode.
    modes = torch.multinomial(torch.tensor([8.0, 4, 2, 1, 1, 0, 0, 0]), 600, replacement=True, generator=gen)
    samples = ring.means[modes] + 0.02 * torch.randn(600, 2, generator=gen)
    got = mode_metrics(samples, ring.means, ring.std)
    covered, hq, kl = _protocol_by_hand(samples, ring.means, ring.std)
    assert got["modes_covered"] == covered == 5
    assert got["high_quality_pct"] == pytest.approx(hq) and 20 < hq < 100
    assert got["mode_kl"] == pytest.approx(kl)
    # One mode: KL = log 8. Every mode equally: KL = 0.
    assert mode_metrics(ring.means[[2] * 10], ring.means, ring.std)["mode_kl"] == pytest.approx(math.log(8))
    assert mode_metrics(ring.means.repeat(3, 1), ring.means, ring.std)["mode_kl"] == pytest.approx(0, abs=1e-12)


def test_maxout_is_the_max_of_its_linear_pieces():
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(6, 3)
    pieces = (x @ layer.linear.weight.T + layer.linear.bias).view(6, 4, 5)
    assert torch.equal(layer(x), pieces.max(2).values)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_maxout_d_judges_packs_and_g_uses_batchnorm(m):
    nets = build_nets(ModelConfig(name="maxout", z_dim=2, width=16, depth=4, width_D=8, depth_D=3, pack=m), (2,))
    assert sum(isinstance(layer, torch.nn.BatchNorm1d) for layer in nets.G.modules()) == 4
    assert sum(isinstance(layer, Maxout) for layer in nets.D.modules()) == 3
    x = torch.randn(8, 2)
    assert nets.D(x).shape == (8 // m,)
    # A pack is m consecutive samples: D's first layer sees them side by side.
    first = nets.D.net[0].linear
    assert first.in_features == 2 * m and first.out_features == 8 * 5


def test_dcgan_d_takes_its_own_width():
    # Widening G alone is cheaper than widening both: D, with R1's double backward, is most of a step.
    def channels(net):
        return [layer.out_channels for layer in net.modules() if isinstance(layer, torch.nn.Conv2d)]

    wide_g = build_nets(ModelConfig(name="dcgan", z_dim=8, width=32, width_D=16), (3, 28, 28))
    same = build_nets(ModelConfig(name="dcgan", z_dim=8, width=32), (3, 28, 28))
    assert channels(wide_g.D) == [16, 32, 1] and channels(same.D) == [32, 64, 1]
    assert [p.shape for p in wide_g.G.parameters()] == [p.shape for p in same.G.parameters()]
    assert wide_g.D(torch.randn(4, 3, 28, 28)).shape == (4,)


def test_veegan_codes_are_gaussian_draws_and_the_recon_cost_is_their_nll():
    torch.manual_seed(0)
    nets = build_nets(ModelConfig(name="veegan", z_dim=3, width=8, depth=2), (2,))
    seen = []
    forward = nets.D.forward
    nets.D.forward = lambda x, labels=None, z=None: (seen.append(z), forward(x, labels, z))[1]
    loss = build_loss(LossConfig(name="veegan", recon_std=0.5))
    real, z = torch.randn(4, 2), torch.randn(4, 3)
    batch = Batch(real=real, fake=nets.G(z).detach(), z=z, labels=None)
    loss.discriminator(nets, batch)
    loss.discriminator(nets, batch)
    codes = nets.G.reconstruct(real).detach()
    # The encoded pairs carry fresh N(0, 0.5^2) noise around F(x) on every call.
    assert not torch.equal(seen[0], seen[2]) and not torch.equal(seen[0], codes)
    assert (seen[0] - codes).std() == pytest.approx(0.5, rel=0.6)
    terms = loss.generator(nets, Batch(real=real, fake=nets.G(z), z=z, labels=None))
    by_hand = ((z - nets.G.reconstruct(nets.G(z))) ** 2).sum(1).mean() / (2 * 0.5**2)
    assert terms["G/recon"].item() == pytest.approx(by_hand.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["mlp", "pacgan", "maxout"])
def test_input_scale_multiplies_what_d_sees(name):
    torch.manual_seed(0)
    scaled = build_nets(ModelConfig(name=name, z_dim=2, width=8, depth=2, pack=2, input_scale_D=30.0), (2,)).D
    torch.manual_seed(0)
    plain = build_nets(ModelConfig(name=name, z_dim=2, width=8, depth=2, pack=2), (2,)).D
    x = torch.randn(4, 2)
    assert torch.allclose(scaled(x), plain(30 * x), atol=1e-5)


# --- benchmarks/mode_collapse.py: which runs it repeats and which it reuses. ---------------------

def _benchmark(results, *args: str) -> subprocess.CompletedProcess:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "mode_collapse.py"
    return subprocess.run([sys.executable, str(script), "--presets", "gan-ring8", "--seeds", "1", "--jobs", "1",
                           "--results", str(results), *args], capture_output=True, text=True, check=True, timeout=600)


def test_benchmark_reuses_a_finished_run_and_reruns_a_changed_config(tmp_path):
    results = tmp_path / "runs.jsonl"
    first = _benchmark(results, "train.steps=2")
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (record["preset"], record["seed"], record["steps"], record["num_samples"]) == ("gan-ring8", 1, 2, 2500)
    assert 0 <= record["modes_covered"] <= 8 and 0 <= record["high_quality_pct"] <= 100
    row = [line for line in first.stdout.splitlines() if line.startswith("| `gan-ring8` | 1 |")]
    assert row and f"{record['modes_covered']:.1f} ± 0.0" in row[0]

    again = _benchmark(results, "train.steps=2")  # the same config and seed: nothing to train
    assert "runs on" not in again.stdout and len(results.read_text().splitlines()) == 1

    # A changed config is a new setting: trained afresh, and the table shows only today's runs.
    changed = _benchmark(results, "train.steps=3")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["steps"] for r in records] == [2, 3] and records[0]["setting"] != records[1]["setting"]
    assert "| `gan-ring8` | 1 |" in changed.stdout and "| 3 | 2500 |" in changed.stdout


def test_a_key_added_at_its_old_behaviour_keeps_the_recorded_runs_in_the_table():
    """A new config key at the value that trains as before (train.generator_steps=1) leaves the
    setting hash of every recorded run as it was; any other value is a new setting."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import mode_collapse

    # The table's runs were recorded before the key existed, and still count.
    records = [json.loads(line) for line in Path(mode_collapse.DEFAULT_RESULTS).read_text().splitlines()]
    assert any(mode_collapse.setting(r["preset"], r["overrides"]) == r["setting"] for r in records)
    today = mode_collapse.setting("gan-ring8", [])
    for (section, key), neutral in mode_collapse.ADDED_KEYS.items():
        assert mode_collapse.setting("gan-ring8", [f"{section}.{key}={neutral}"]) == today
    assert mode_collapse.setting("gan-ring8", ["train.generator_steps=2"]) != today
