"""Metrics against independent code: pytorch-fid, torch-fidelity, prdc, and hand-built answers."""

from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import pytest
import torch

from gankit.config import DataConfig, EvalConfig
from gankit.errors import GankitError
from gankit.metrics import list_metrics
from gankit.metrics.density_coverage import density_coverage
from gankit.metrics.evaluate import Evaluation, load_or_compute_reference, score
from gankit.metrics.kid import polynomial_mmd2
from gankit.metrics.modes2d import mode_metrics
from gankit.metrics.precision_recall import precision_recall
from gankit.metrics.stacked_mnist import classify_channels, stacked_modes
from gankit.metrics.stats import SingularCovarianceWarning, feature_statistics, frechet_distance
from gankit.training.eval_hook import CollapseDetector


def _features(n, d, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g) / d ** 0.5
    return torch.randn(n, d, generator=g) @ mixing + shift


def test_registry_lists_every_metric():
    assert set(list_metrics()) >= {"fid", "is", "kid", "pr", "dc", "modes", "stacked", "cfid", "cis"}


def test_fid_equals_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = _features(600, 64, seed=1), _features(500, 64, shift=0.3, seed=2)
    sa, sb = feature_statistics(a), feature_statistics(b)
    expected = calculate_frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov)
    # numpy's own statistics, so the reference side shares nothing with gankit's
    na, nb = a.double().numpy(), b.double().numpy()
    expected_np = calculate_frechet_distance(na.mean(0), np.cov(na, rowvar=False), nb.mean(0), np.cov(nb, rowvar=False))
    value = frechet_distance(sa, sb)
    assert value == pytest.approx(expected, rel=1e-6)
    assert value == pytest.approx(expected_np, rel=1e-6)
    assert frechet_distance(sa, sa) == pytest.approx(0, abs=1e-8)


def test_singular_covariance_warns_and_stays_finite():
    a, b = _features(20, 64, seed=3), _features(30, 64, seed=4)
    with pytest.warns(SingularCovarianceWarning, match="20 samples in 64 dimensions"):
        value = frechet_distance(feature_statistics(a), feature_statistics(b))
    assert math.isfinite(value) and value > 0
    with pytest.raises(GankitError, match="not finite"):
        bad = feature_statistics(torch.full((80, 4), float("nan")))
        frechet_distance(bad, feature_statistics(_features(80, 4)))


def test_kid_kernel_matches_hand_computation():
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    k = lambda u, v: (u @ v / 2 + 1) ** 3  # noqa: E731
    expected = (2 * k(x[0], x[1]) + 2 * k(y[0], y[1])) / 2 - 2 * sum(k(a, b) for a in x for b in y) / 4
    assert polynomial_mmd2(x, y) == pytest.approx(expected)


def test_precision_recall_density_coverage_equal_prdc():
    from prdc import compute_prdc

    real, fake = _features(300, 16, seed=5), _features(250, 16, shift=0.4, seed=6)
    r, f = real.double().numpy(), fake.double().numpy()
    pr3, dc5 = compute_prdc(r, f, nearest_k=3), compute_prdc(r, f, nearest_k=5)
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert (precision, recall) == pytest.approx((pr3["precision"], pr3["recall"]), abs=1e-12)
    assert (density, coverage) == pytest.approx((dc5["density"], dc5["coverage"]), abs=1e-12)
    assert 0 < precision < 1 and 0 < recall < 1


def test_2d_mode_metrics_on_hand_built_sets():
    from gankit.data.mixtures import ring_means

    means, std = ring_means(8, 1.0), 0.01
    at_means = means.repeat(10, 1)
    assert mode_metrics(at_means, means, std) == pytest.approx(
        {"modes_covered": 8, "high_quality_pct": 100.0, "mode_kl": 0.0})
    one_mode = means[[3]].repeat(80, 1) + 0.005
    assert mode_metrics(one_mode, means, std) == pytest.approx(
        {"modes_covered": 1, "high_quality_pct": 100.0, "mode_kl": math.log(8)})
    half_far = torch.cat([at_means, torch.full((80, 2), 5.0)])
    assert mode_metrics(half_far, means, std) == pytest.approx(
        {"modes_covered": 8, "high_quality_pct": 50.0, "mode_kl": 0.0})
    # 3 sigma is the line: 2.9 sigma away counts, 3.1 sigma away does not
    near = means + torch.tensor([2.9 * std, 0.0])
    far = means + torch.tensor([3.1 * std, 0.0])
    assert mode_metrics(near, means, std)["modes_covered"] == 8
    assert mode_metrics(far, means, std)["modes_covered"] == 0


def test_collapse_rule():
    detector = CollapseDetector(lower_is_better=True, factor=2.0, patience=2)
    history = [(100, 50.0), (200, 30.0), (300, 70.0), (400, 40.0), (500, 65.0), (600, 90.0), (700, 20.0)]
    revealed = [step for step, value in history if detector.update(step, step / 10, value)]
    # 70 > 2 x 30 but 40 is not: no collapse yet; 65 and 90 both are, so it collapsed at step 500
    assert revealed == [600] and detector.collapsed_at == (500, 50.0)
    assert detector.best == 20.0
    higher = CollapseDetector(lower_is_better=False, factor=2.0, patience=1)
    assert not higher.update(1, 0.1, 8.0) and not higher.update(2, 0.2, 4.5) and higher.update(3, 0.3, 3.9)


# ---------------------------------------------------------------------------------------------
# Inception: gankit's path against torch-fidelity's own, on one random-weight weights file.


@pytest.mark.parametrize("size", [(32, 32), (28, 20), (8, 8), (299, 299), (512, 400)])
def test_matmul_resize_equals_torch_fidelity_tf1_bilinear(size):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from gankit.metrics.inception import tf1_resize_matrix

    x = torch.randint(0, 256, (2, 3, *size), generator=torch.Generator().manual_seed(0)).float()
    expected = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    got = tf1_resize_matrix(size[0]) @ x @ tf1_resize_matrix(size[1]).T
    # pixel values are 0..255; summing in another order moves them by about 3e-5 in float32
    assert (got - expected).abs().max().item() < 1e-4


def test_inception_features_equal_torch_fidelity(random_inception):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from gankit.metrics.inception import InceptionBackbone

    grey = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=str(random_inception))
    with torch.inference_mode():
        pool, logits = theirs(grey.expand(-1, 3, -1, -1))
    ours = InceptionBackbone(random_inception, batch_size=2)(grey.float() / 127.5 - 1)  # 2 batches, one of 1
    # BN folded into the convolutions and the matmul resize change only float rounding
    assert (ours["pool"] - pool).abs().max() <= 1e-5 * pool.abs().max()
    assert (ours["logits"] - logits).abs().max() <= 1e-5 * logits.abs().max()


def test_fid_is_kid_equal_torch_fidelity(random_inception, tmp_path):
    import torch_fidelity

    g = torch.Generator().manual_seed(0)
    fake_u8 = torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8)
    real_u8 = (torch.rand(10, 3, 32, 32, generator=g) ** 2 * 255).round().to(torch.uint8)

    class Images(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    expected = torch_fidelity.calculate_metrics(
        input1=Images(fake_u8), input2=Images(real_u8), isc=True, fid=True, kid=True, cuda=False, cache=False,
        verbose=False, save_cpu_ram=True, samples_shuffle=False, kid_subsets=4, kid_subset_size=10,
        feature_extractor_weights_path=str(random_inception), rng_seed=0)

    from gankit.metrics import kid as kid_module
    from gankit.metrics.evaluate import Reference
    from gankit.metrics.inception import InceptionBackbone

    backbone = InceptionBackbone(random_inception)
    real = backbone(real_u8.float() / 127.5 - 1)
    ev = Evaluation(fake_u8.float() / 127.5 - 1, DataConfig(name="mnist5k", channels=3), EvalConfig(), shared={
        "backbones": {"inception": backbone},
        "references": {"inception": Reference(real["pool"], real["logits"], feature_statistics(real["pool"]), {})}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularCovarianceWarning)  # 10 samples in 2048-d, on purpose
        kid_module.SUBSETS = 4
        try:
            got = {r["metric"]: r for r in score(ev, ["fid", "is", "kid"])}
        finally:
            kid_module.SUBSETS = 100
    assert got["is"]["value"] == pytest.approx(expected["inception_score_mean"], rel=1e-4)
    assert got["is_std"]["value"] == pytest.approx(expected["inception_score_std"], rel=1e-3, abs=1e-6)
    assert got["kid"]["value"] == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-3)
    assert got["fid"]["value"] == pytest.approx(expected["frechet_inception_distance"], rel=1e-3)
    assert got["fid"]["backbone"] == "inception-2015-12-05"
    assert got["fid"]["weights_hash"] == hashlib.sha256(random_inception.read_bytes()).hexdigest()[:16]
    assert got["fid"]["n_reference"] == 10 and got["fid"]["n_generated"] == 10


def test_offline_without_inception_weights_is_one_sentence(monkeypatch, tmp_path):
    import urllib.error

    from gankit.metrics.inception import find_weights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(GankitError) as info:
        find_weights(None)
    message = str(info.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in message and "96 MB" in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "--inception-weights" in message
    assert message.count(". ") == 0  # one sentence
    with pytest.raises(GankitError, match="no Inception weights at"):
        find_weights(tmp_path / "missing.pth")


# ---------------------------------------------------------------------------------------------
# The dataset classifier: classifier-FID/IS, Stacked MNIST, and the reference cache.


def test_classifier_reports_accuracy_and_hash(mnist_classifier):
    cache, path, meta = mnist_classifier
    assert meta["test_accuracy"] > 0.85 and meta["n_test"] == 500
    stored = json.loads(path.with_suffix(".json").read_text())
    assert stored["test_accuracy"] == meta["test_accuracy"]
    assert stored["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _digits_by_class(backbone):
    """Real mnist5k test digits the classifier labels correctly, grouped by digit: (10, M, 1, 28, 28)."""
    from gankit.data import build_dataset

    test = build_dataset(DataConfig(name="mnist5k", split="test"))
    images = test.images.float() / 127.5 - 1
    predicted = backbone(images)["logits"].argmax(1)
    right = predicted == test.labels
    return torch.stack([images[right & (test.labels == d)][:20] for d in range(10)])


def test_stacked_mnist_modes_on_stacked_real_digits(mnist_classifier):
    from gankit.metrics.classifier import ClassifierBackbone

    _, path, _ = mnist_classifier
    backbone = ClassifierBackbone(path)
    digits = _digits_by_class(backbone)  # (10, 20, 1, 28, 28)
    modes = torch.arange(1000)
    triples = torch.stack([modes // 100, modes // 10 % 10, modes % 10], 1)  # every mode once
    pick = torch.arange(1000) % 20

    def stack(t):
        return torch.cat([digits[t[:, c], pick[: len(t)], 0][:, None] for c in range(3)], 1)  # (N, 3, 28, 28)

    every = stack(triples)
    assert torch.equal(classify_channels(backbone, every), triples)
    assert stacked_modes(classify_channels(backbone, every)) == pytest.approx({"stacked_modes": 1000, "stacked_kl": 0})
    one = stack(torch.tensor([[3, 1, 4]]).repeat(50, 1))
    assert stacked_modes(classify_channels(backbone, one)) == pytest.approx(
        {"stacked_modes": 1, "stacked_kl": math.log(1000)})
    two = stack(torch.tensor([[0, 0, 7], [9, 5, 2]]).repeat(30, 1))
    assert stacked_modes(classify_channels(backbone, two)) == pytest.approx(
        {"stacked_modes": 2, "stacked_kl": math.log(500)})
    ev = Evaluation(every, DataConfig(name="stacked-mnist", channels=3), EvalConfig(classifier=str(path)))
    records = {r["metric"]: r for r in score(ev, ["stacked"])}
    assert records["stacked_modes"]["value"] == 1000 and records["stacked_modes"]["backbone"] == "classifier:mnist5k"


def test_classifier_fid_and_reference_cache(mnist_classifier, tmp_path):
    from gankit.metrics.classifier import ClassifierBackbone

    cache, path, _ = mnist_classifier
    data = DataConfig(name="mnist5k")
    backbone = ClassifierBackbone(path)
    calls = []
    original = backbone.forward_batch
    backbone.forward_batch = lambda x: calls.append(len(x)) or original(x)
    first = load_or_compute_reference(data, backbone, 300, tmp_path)
    assert sum(calls) == 300 and first.n == 300
    files = list((tmp_path / "refstats").glob("*.pt"))
    assert len(files) == 1
    again = load_or_compute_reference(data, backbone, 300, tmp_path)
    assert sum(calls) == 300  # reused: the key matched
    assert torch.equal(again.pool, first.pool)
    load_or_compute_reference(data, backbone, 200, tmp_path)  # another n: another key, recomputed
    assert sum(calls) == 500 and len(list((tmp_path / "refstats").glob("*.pt"))) == 2
    # real test digits against the train reference: a small classifier-FID; noise: a large one
    from gankit.data import build_dataset

    test_images = build_dataset(DataConfig(name="mnist5k", split="test")).images.float() / 127.5 - 1
    test_images = test_images[torch.randperm(500, generator=torch.Generator().manual_seed(0))]  # i.i.d., as G's
    eval_cfg = EvalConfig(cache_dir=str(cache), num_samples=500)
    real = {r["metric"]: r["value"] for r in score(Evaluation(test_images, data, eval_cfg), ["cfid", "cis"])}
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fake = {r["metric"]: r["value"] for r in score(Evaluation(noise, data, eval_cfg), ["cfid", "cis"])}
    assert real["cfid"] < fake["cfid"] / 10
    assert real["cis"] > 3 and fake["cis"] < real["cis"] - 1  # 50 samples per split caps IS well below 10
