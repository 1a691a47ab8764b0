"""PSNR/SSIM: hand-computed values, an independent float64 scipy implementation on a
photograph-like image, the torch batch path, BGR/RGB conventions and input errors."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from scipy.signal import convolve2d

from hfmagic.metrics import psnr, rgb_to_y, ssim


def photo_like(height=96, width=128, seed=0):
    """A synthetic 'photograph': sky gradient, shapes with soft edges, fine texture and sensor noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([90 + 100 * yy / height, 120 + 60 * xx / width, 200 - 80 * yy / height], axis=-1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse((10, 30, 60, 80), fill=(200, 60, 40))
    draw.rectangle((70, 10, 120, 70), fill=(30, 140, 70))
    draw.polygon([(20, 90), (64, 40), (110, 95)], fill=(240, 220, 120))
    img = np.asarray(img.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float64)
    texture = 12 * np.sin(xx / 2.3 + np.cos(yy / 3.1)) * np.cos(yy / 4.7)
    img = img + texture[..., None] + rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def degraded(img):
    """Down x2 then up x2 with PIL bicubic plus noise: a plausible SR output."""
    pil = Image.fromarray(img)
    small = pil.resize((img.shape[1] // 2, img.shape[0] // 2), Image.BICUBIC)
    up = np.asarray(small.resize((img.shape[1], img.shape[0]), Image.BICUBIC), dtype=np.float64)
    up += np.random.RandomState(1).normal(0, 2, up.shape)
    return np.clip(np.round(up), 0, 255).astype(np.uint8)


# ---- an independent reference: float64 throughout, scipy's convolution, BasicSR-style loops ----
def ref_y(img_rgb):
    x = img_rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def ref_psnr(a, b, crop, y):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if y:
        a, b = ref_y(a)[..., None], ref_y(b)[..., None]
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    return 10 * math.log10(255.0**2 / np.mean((a - b) ** 2))


def ref_ssim(a, b, crop, y):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if y:
        a, b = ref_y(a)[..., None], ref_y(b)[..., None]
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    g = np.array([math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)])
    g /= g.sum()
    window = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(a.shape[2]):
        x, z = a[..., c], b[..., c]

        def f(m):
            return convolve2d(m, window, mode="valid")

        mx, mz = f(x), f(z)
        sxx, szz, sxz = f(x * x) - mx**2, f(z * z) - mz**2, f(x * z) - mx * mz
        smap = ((2 * mx * mz + c1) * (2 * sxz + c2)) / ((mx**2 + mz**2 + c1) * (sxx + szz + c2))
        values.append(smap.mean())
    return float(np.mean(values))


@pytest.fixture(scope="module")
def pair():
    hr = photo_like()
    return hr, degraded(hr)


@pytest.mark.parametrize("crop,y", [(0, False), (4, False), (0, True), (3, True)])
def test_psnr_ssim_match_independent_reference(pair, crop, y):
    hr, sr = pair
    p = psnr(hr, sr, crop_border=crop, y_channel=y)
    s = ssim(hr, sr, crop_border=crop, y_channel=y)
    assert 20 < p < 45 and 0.3 < s < 0.999  # a realistic, non-trivial pair
    assert abs(p - ref_psnr(hr, sr, crop, y)) < 1e-4
    assert abs(s - ref_ssim(hr, sr, crop, y)) < 1e-6
    # float input in [0, 255] gives the same values as uint8
    assert abs(psnr(hr.astype(np.float64), sr.astype(np.float32), crop, y) - p) < 1e-9


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_real_photographs_x4_bicubic(name):
    """MMagic's setting on real photos (the embedded CC0/public-domain ones): x4 MATLAB-bicubic
    round trip, RGB and Y, crop_border=4, against the float64 reference."""
    from hfmagic.data import imresize
    from hfmagic.data.embedded import embedded_image

    hr = np.asarray(Image.open(embedded_image(name)).convert("RGB"))
    hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
    lr = imresize(hr, 0.25, round_uint8=True)
    sr = imresize(lr, 4, round_uint8=True)
    for y in (False, True):
        p, s = psnr(hr, sr, 4, y), ssim(hr, sr, 4, y)
        assert 18 < p < 40 and 0.4 < s < 0.98
        assert abs(p - ref_psnr(hr, sr, 4, y)) < 1e-4
        assert abs(s - ref_ssim(hr, sr, 4, y)) < 1e-6


def test_hand_computed_values():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 105, np.uint8)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 5), abs=1e-6)
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    c1 = (0.01 * 255) ** 2
    # constant images: no variance, so SSIM is the luminance term alone
    assert ssim(a, b) == pytest.approx((2 * 100 * 105 + c1) / (100**2 + 105**2 + c1), abs=1e-10)
    # Y of pure red against black: 16 + 65.481 vs 16
    red, black = np.zeros((12, 12, 3), np.uint8), np.zeros((12, 12, 3), np.uint8)
    red[..., 0] = 255
    assert psnr(red, black, y_channel=True) == pytest.approx(20 * math.log10(255 / 65.481), abs=1e-4)
    # crop_border only removes the border: differences there do not count
    noisy = a.copy()
    noisy[:2] = 0
    noisy[:, -2:] = 255
    assert psnr(a, noisy, crop_border=2) == math.inf
    assert psnr(a, noisy) < 20


def test_identical_images_and_ssim_of_real_pair(pair):
    hr, _ = pair
    assert psnr(hr, hr, y_channel=True) == math.inf
    assert ssim(hr, hr, crop_border=4, y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_bgr_convention_and_chw_order(pair):
    hr, sr = pair
    rgb = psnr(hr, sr, y_channel=True)
    assert psnr(hr[..., ::-1], sr[..., ::-1], y_channel=True, channel_order="bgr") == pytest.approx(rgb, abs=1e-9)
    # reading RGB data as BGR changes Y (BasicSR's convention applied to RGB files is a known pitfall)
    assert abs(psnr(hr, sr, y_channel=True, channel_order="bgr") - rgb) > 1e-3
    chw = psnr(hr.transpose(2, 0, 1), sr.transpose(2, 0, 1), input_order="CHW", crop_border=2)
    assert chw == pytest.approx(psnr(hr, sr, crop_border=2), abs=1e-9)
    gray = psnr(hr[..., 0], sr[..., 0])
    assert gray == pytest.approx(ref_psnr(hr[..., :1], sr[..., :1], 0, False), abs=1e-4)


def test_torch_batch_gives_per_image_values(pair):
    hr, sr = pair
    hr2, sr2 = photo_like(seed=3), degraded(photo_like(seed=3))
    to_t = lambda arrs: torch.stack([torch.from_numpy(x).permute(2, 0, 1) for x in arrs]).float() / 255.0
    x, y = to_t([hr, hr2]), to_t([sr, sr2])
    for y_channel in (False, True):
        p = psnr(x, y, crop_border=4, y_channel=y_channel)
        s = ssim(x, y, crop_border=4, y_channel=y_channel)
        assert p.shape == s.shape == (2,) and p.dtype == torch.float64
        for i, (a, b) in enumerate([(hr, sr), (hr2, sr2)]):
            assert float(p[i]) == pytest.approx(ref_psnr(a, b, 4, y_channel), abs=1e-4)
            assert float(s[i]) == pytest.approx(ref_ssim(a, b, 4, y_channel), abs=1e-5)
    assert psnr(x[0], y[0]).dim() == 0
    # uint8 tensors are read as [0, 255]
    assert float(psnr(x.mul(255).round().to(torch.uint8), y.mul(255).round().to(torch.uint8))[0]) == pytest.approx(
        psnr(hr, sr), abs=1e-4
    )


def test_rgb_to_y_range():
    white = torch.full((1, 3, 2, 2), 255.0)
    black = torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235.0), atol=1e-3)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16.0))


def test_bad_inputs_raise_clear_errors():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, np.zeros((16, 15, 3), np.uint8))
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=8)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=-1)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a, a, crop_border=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        psnr(torch.full((1, 3, 8, 8), 200.0), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="must both be numpy arrays"):
        psnr(a, torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="channel_order"):
        psnr(a, a, y_channel=True, channel_order="gbr")
    with pytest.raises(ValueError, match="input_order"):
        psnr(a, a, input_order="NHWC")


def test_numpy_floats_in_unit_range_warn_about_the_scale():
    rng = np.random.default_rng(0)
    hr = rng.uniform(0, 1, (16, 16, 3))
    sr = np.clip(hr + rng.normal(0, 0.01, hr.shape), 0, 1)
    with pytest.warns(UserWarning, match=r"float arrays in \[0, 1\].*multiply them by 255"):
        wrong = psnr(hr, sr)
    assert psnr(hr * 255, sr * 255) == pytest.approx(wrong - 20 * np.log10(255), abs=1e-3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # [0, 255] data, uint8 and all-black images do not warn
        psnr(hr * 255, sr * 255)
        psnr((hr * 255).astype(np.uint8), (sr * 255).astype(np.uint8))
        psnr(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
