"""hfmagic.data.imresize against an independent, loop-based float64 version of MATLAB's algorithm."""

import math

import numpy as np
import pytest
import torch

from hfmagic.data import imresize


def _keys_cubic(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _mirror(i: int, n: int) -> int:
    """Symmetric padding of a 0-based index (edge pixel repeated), applied until it lands inside."""
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - 1 - i
    return i


def _resize_1d_reference(signal: np.ndarray, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """MATLAB imresize's contributions, computed output pixel by output pixel (axis 0 of `signal`)."""
    n = signal.shape[0]
    width = 4.0 / scale if (scale < 1 and antialias) else 4.0
    out = np.zeros((out_len,) + signal.shape[1:], dtype=np.float64)
    for i in range(1, out_len + 1):  # MATLAB is 1-based
        centre = i / scale + 0.5 * (1 - 1 / scale)
        first = math.floor(centre - width / 2)
        taps = range(first, first + int(math.ceil(width)) + 2)
        if scale < 1 and antialias:
            weights = [scale * _keys_cubic((centre - j) * scale) for j in taps]
        else:
            weights = [_keys_cubic(centre - j) for j in taps]
        total = sum(weights)
        for j, w in zip(taps, weights):
            out[i - 1] += (w / total) * signal[_mirror(j - 1, n)]
    return out


def _reference(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    img = img.astype(np.float64)
    out_h, out_w = math.ceil(img.shape[0] * scale - 1e-9), math.ceil(img.shape[1] * scale - 1e-9)
    rows = _resize_1d_reference(img, out_h, scale, antialias)
    return np.swapaxes(_resize_1d_reference(np.swapaxes(rows, 0, 1), out_w, scale, antialias), 0, 1)


SCALES = [1 / 2, 1 / 3, 1 / 4, 2, 4]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("size", [(12, 12), (13, 17), (25, 9)])
def test_float_matches_reference(scale, size):
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, size=size + (3,))
    out = imresize(img, scale)
    ref = _reference(img, scale)
    assert out.shape == ref.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale", [1 / 3, 2])
def test_no_antialiasing_matches_reference(scale):
    img = np.random.default_rng(1).uniform(0, 1, size=(14, 11, 3))
    np.testing.assert_allclose(imresize(img, scale, antialiasing=False), _reference(img, scale, False), atol=1e-6)


def test_tiny_image_symmetric_padding_wraps():
    # Downscaling x4 reaches 8 pixels beyond the border, more than a 3-pixel image has: the mirror repeats.
    img = np.random.default_rng(2).uniform(0, 255, size=(3, 5))
    np.testing.assert_allclose(imresize(img, 0.25), _reference(img[..., None], 0.25)[..., 0], atol=1e-6)


def test_output_shapes_follow_matlab_ceil():
    img = np.zeros((13, 17, 3))
    assert imresize(img, 1 / 2).shape == (7, 9, 3)
    assert imresize(img, 1 / 3).shape == (5, 6, 3)
    assert imresize(np.zeros((30, 30)), 1 / 3).shape == (10, 10)
    assert imresize(img, output_shape=(6, 4)).shape == (6, 4, 3)


def test_constant_image_stays_constant():
    for scale in SCALES:
        out = imresize(np.full((11, 14, 3), 77.0), scale)
        np.testing.assert_allclose(out, 77.0, atol=1e-9)
    tensor = imresize(torch.full((2, 3, 11, 14), 0.3), 0.25)
    torch.testing.assert_close(tensor, torch.full((2, 3, 3, 4), 0.3))


def test_hand_computed_pixel_half_scale():
    # Rows 0, 10, ..., 70 along the width. At x0.5 the first output pixel is centred at 1.5 (1-based),
    # the widened kernel's normalised taps on v1..v5 (mirror folded) are
    # 0.546875, 0.3984375, 0.1015625, -0.03515625, -0.01171875 -> 4.4921875.
    img = np.tile(np.arange(0, 160, 10, dtype=np.float64), (6, 1))
    out = imresize(img, 0.5)
    assert out.shape == (3, 8)
    assert out[0, 0] == pytest.approx(4.4921875, abs=1e-12)
    np.testing.assert_allclose(out[:, 0], 4.4921875, atol=1e-12)
    # Away from the borders (taps 4..11, 1-based) a symmetric kernel keeps linear data linear:
    # output pixel 4 is centred at 7.5, between 60 and 70.
    assert out[1, 3] == pytest.approx(65.0, abs=1e-12)
    # Near the border the mirror bends the ramp: pixel 2 (centre 3.5) reads taps 0..7 = values
    # 0, 0, 10, ..., 60 (tap 0 mirrors tap 1) -> (2.265625 + 17.34375 + 26.015625 + 9.0625
    # - 3.515625 - 1.40625) / 2 = 24.8828125, not 25.
    assert out[1, 1] == pytest.approx(24.8828125, abs=1e-12)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2])
def test_uint8_rounding_is_matlab_exact_away_from_ties(scale):
    img = np.random.default_rng(3).integers(0, 256, size=(17, 22, 3), dtype=np.uint8)
    ref = _reference(img, scale)
    out = imresize(img, scale)
    assert out.dtype == np.float64  # MMagic 1.2: uint8 in, float out, no rounding
    np.testing.assert_allclose(out, ref, atol=1e-4)
    rounded = imresize(img, scale, round_uint8=True)
    assert rounded.dtype == np.uint8
    expected = np.clip(np.floor(ref + 0.5), 0, 255)
    # MATLAB's rule (half away from zero, saturated) exactly, except within float noise of a .5 tie
    clear = np.abs(ref - np.floor(ref) - 0.5) > 1e-3
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(rounded[clear], expected[clear])
    assert np.abs(rounded.astype(int) - expected).max() <= 1


def test_tensor_batched_equals_per_image_and_numpy():
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 1, size=(3, 15, 10, 3))
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    out = imresize(batch, 1 / 3)
    assert out.shape == (3, 3, 5, 4) and out.dtype == torch.float32
    for i in range(3):
        single = imresize(batch[i], 1 / 3)  # CHW
        torch.testing.assert_close(out[i], single, atol=1e-6, rtol=0)
        np.testing.assert_allclose(out[i].permute(1, 2, 0).numpy(), _reference(images[i], 1 / 3), atol=1e-5)


def test_tensor_dtypes():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert imresize(x, 0.5).dtype == torch.float64
    assert imresize(x.half(), 0.5).dtype == torch.float16
    as_uint8 = (x * 255).round().to(torch.uint8)
    assert imresize(as_uint8, 0.5).dtype == torch.float32
    assert imresize(as_uint8, 0.5, round_uint8=True).dtype == torch.uint8
    assert imresize(np.zeros((8, 8, 3), np.float32), 0.5).dtype == np.float32


def test_bad_arguments():
    img = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, 0.5, output_shape=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize(img, -1)
    with pytest.raises(ValueError, match="shape"):
        imresize(np.zeros((2, 2, 2, 2)), 0.5)
    with pytest.raises(TypeError):
        imresize([[1, 2], [3, 4]], 0.5)
