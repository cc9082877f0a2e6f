"""Label preservation: does a translation keep the class of what it translated?

For an image-to-image model trained on two unpaired domains of the same classes (scikit-learn
digits and MNIST in `cyclegan-digits`), a faithful translation G(x) of a digit x still shows x's
digit. The score is the accuracy, against x's own label, of the target domain's classifier
(`gankit classifier train --data DATASET --domain A|B`) on G(x): 1.0 when every translation keeps
its digit, about 1/K for a translation that ignores its input. It is the FCN-score idea of
CycleGAN's sec. 5.1 (Zhu et al. 2017), with a digit classifier in place of a segmenter.
A conditional noise GAN, whose samples carry the label they were asked for, gets the same score:
how often the classifier agrees with the requested class.
"""

from __future__ import annotations

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric


class LabelPreservation(Metric):
    backbone = "classifier"
    headline = "label_preservation"
    lower_is_better = {"label_preservation": False}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images(self.headline)
        if ev.labels is None:
            raise GankitError("label_preservation needs the label each sample should show: a translation run on "
                              "labelled domains (such as data.name=digits2mnist) or a conditional GAN.")
        predicted = ev.fake_features("classifier")["logits"].argmax(1)
        return {self.headline: float((predicted == ev.labels).float().mean())}


@register_metric("label_preservation")
def build_label_preservation() -> Metric:
    return LabelPreservation()
