"""Q2's sharpness check (xaikit.robustness): the blur flips decisions at the model's own threshold."""

import numpy as np
import pytest

from xaikit.robustness import blur_sensitivity


class TextureModel:
    """P(PNEUMONIA) = the image's mean + 0.25 x (how much of its fine texture is gone): a model that
    reads blur as PNEUMONIA, with the answer known for every image."""

    def predict(self, x, batch_size=None, verbose=0):
        x = np.asarray(x, np.float64)
        texture = np.abs(np.diff(x[..., 0], axis=2)).mean(axis=(1, 2)) / 0.2        # 1 sharp, ~0 blurred
        p = x.mean(axis=(1, 2, 3)) + 0.25 * (1 - np.clip(texture, 0, 1))
        return np.stack([1 - p, p], axis=1)


def _images() -> np.ndarray:
    check = (np.indices((32, 32)).sum(0) % 2) * 0.2 - 0.1                           # +-0.1, mean 0
    return np.stack([np.full((32, 32), c) + check for c in (0.2, 0.3, 0.6, 0.7)])[..., None].astype(np.float32)


def test_flips_are_counted_at_the_operating_threshold():
    # catches: the flip counted at 0.5 whatever the model's validation threshold (#32), or among all images
    # instead of those decided NORMAL
    x = _images()
    low = blur_sensitivity(TextureModel(), x, 2.0, threshold=0.4)     # NORMAL: 0.2 and 0.3, both cross 0.4
    assert low.flipped_to_pneumonia == pytest.approx(1.0)
    mid = blur_sensitivity(TextureModel(), x, 2.0, threshold=0.5)     # NORMAL: 0.2 and 0.3; only 0.3 + 0.25 crosses
    assert mid.flipped_to_pneumonia == pytest.approx(0.5)
    assert mid.mean_shift == pytest.approx(0.25, abs=0.03)
    with pytest.raises(ValueError, match="threshold expects"):
        blur_sensitivity(TextureModel(), x, 2.0, threshold=1.5)
