"""GAN metrics: MS-SSIM and SWD against straightforward numpy/scipy loop implementations of
MMagic's computation, their properties, and FID and IS with tiny scripted Inception stand-ins."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import convolve2d, correlate2d

import hfmagic

from hfmagic.metrics import (
    MS_SSIM_WEIGHTS,
    SlicedWassersteinDistance,
    feature_statistics,
    fid,
    frechet_distance,
    inception_score,
    inception_score_from_probabilities,
    ms_ssim,
    swd,
)
from hfmagic.metrics.swd import laplacian_pyramid, normalize_descriptors, swd_resolutions


def smooth_images(n, size, seed, channels=3):
    """Random smooth images in [0, 255] (NCHW float64): blurred noise plus a gradient."""
    rng = np.random.RandomState(seed)
    out = np.empty((n, channels, size, size))
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    ramp = np.linspace(0, 60, size)[None, :]
    for i in range(n):
        for c in range(channels):
            x = rng.uniform(0, 255, (size, size))
            for _ in range(2):
                x = convolve2d(x, k, mode="same", boundary="symm")
            out[i, c] = np.clip(0.7 * x + ramp * rng.uniform(-1, 1), 0, 255)
    return out


# ------------------------------------------------------------------ MS-SSIM reference (PGGAN)
def ref_ms_ssim_pair(a, b):
    """a, b: (C, H, W) float64 in [0, 255]; one pair, loops over channels, scipy convolution."""
    mssim, mcs = [], []
    for level in range(5):
        if level:
            a = (a[:, 0::2, 0::2] + a[:, 1::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 1::2]) / 4
            b = (b[:, 0::2, 0::2] + b[:, 1::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 1::2]) / 4
        size = min(11, a.shape[1], a.shape[2])
        sigma = size * 1.5 / 11
        radius = size // 2
        offset, stop = (0.5, radius) if size % 2 == 0 else (0.0, radius + 1)
        x, y = np.mgrid[offset - radius : stop, offset - radius : stop]
        win = np.exp(-((x**2 + y**2) / (2 * sigma**2)))
        win /= win.sum()
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        s_maps, cs_maps = [], []
        for c in range(a.shape[0]):
            mu1, mu2 = convolve2d(a[c], win, "valid"), convolve2d(b[c], win, "valid")
            s11 = convolve2d(a[c] * a[c], win, "valid") - mu1 * mu1
            s22 = convolve2d(b[c] * b[c], win, "valid") - mu2 * mu2
            s12 = convolve2d(a[c] * b[c], win, "valid") - mu1 * mu2
            v1, v2 = 2 * s12 + c2, s11 + s22 + c2
            s_maps.append((2 * mu1 * mu2 + c1) * v1 / ((mu1 * mu1 + mu2 * mu2 + c1) * v2))
            cs_maps.append(v1 / v2)
        mssim.append(max(np.mean(s_maps), 0.0))
        mcs.append(max(np.mean(cs_maps), 0.0))
    w = MS_SSIM_WEIGHTS
    return float(np.prod([mcs[i] ** w[i] for i in range(4)]) * mssim[4] ** w[4])


def test_ms_ssim_matches_loop_reference():
    images = smooth_images(6, 32, seed=0)
    # make pair 0 similar, pair 2 different: a range of scores
    images[1] = np.clip(images[0] + np.random.RandomState(1).normal(0, 8, images[0].shape), 0, 255)
    scores = ms_ssim(torch.from_numpy(images), reduction="none")
    expected = [ref_ms_ssim_pair(images[2 * i], images[2 * i + 1]) for i in range(3)]
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-3)
    assert scores[0] > 0.5 > scores[2] > 0  # similar pair scores high
    assert ms_ssim(torch.from_numpy(images)) == pytest.approx(np.mean(expected), rel=1e-3)


def test_ms_ssim_properties_and_conventions():
    images = torch.from_numpy(smooth_images(4, 32, seed=2)).float()
    assert ms_ssim(images.repeat_interleave(2, dim=0)) == pytest.approx(1.0, abs=1e-9)
    value = ms_ssim(images)
    # the same images as NHWC numpy, as uint8-free floats in (-1, 1), in small batches: same value
    assert ms_ssim(images.permute(0, 2, 3, 1).numpy()) == pytest.approx(value, rel=1e-9)
    assert ms_ssim(images / 127.5 - 1, value_range=(-1, 1)) == pytest.approx(value, rel=1e-6)
    assert ms_ssim(images, batch_size=1) == pytest.approx(value, rel=1e-12)
    with pytest.raises(ValueError, match="even number"):
        ms_ssim(images[:3])
    with pytest.raises(ValueError, match="multiples of 16"):
        ms_ssim(images[:, :, :24, :24])


# ------------------------------------------------------------------ SWD reference (loops)
KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def ref_blur(channel, stride):
    out = correlate2d(channel, KERNEL, mode="same", boundary="fill", fillvalue=0.0)
    return out[::stride, ::stride]


def ref_laplacian(img, num_levels):
    """img: (C, H, W) float64."""
    gaussians = [img]
    for _ in range(num_levels - 1):
        gaussians.append(np.stack([ref_blur(c, 2) for c in gaussians[-1]]))
    levels = []
    for fine, coarse in itertools.pairwise(gaussians):
        up = np.stack([ref_blur(np.repeat(np.repeat(c, 2, 0), 2, 1), 1) for c in coarse])
        levels.append(fine - up)
    return levels + [gaussians[-1]]


def ref_swd(real, fake, seed, nhoods=128, repeats=4, dirs_per=128):
    """real, fake: (N, C, H, W) in [0, 255]. Same random draws as documented in hfmagic.metrics.swd."""
    n, _, size, _ = real.shape
    resolutions = []
    res = size
    while res >= 16 and len(resolutions) < 4:
        resolutions.append(res)
        res //= 2
    num_levels = len(resolutions)
    descs = {}
    for kind, images in (("real", real), ("fake", fake)):
        images = (images - 127.5) / 127.5
        pyramids = [ref_laplacian(img, num_levels) for img in images]
        descs[kind] = []
        offset = 0 if kind == "real" else 8  # independent positions for real and fake
        for lod in range(num_levels):
            h = pyramids[0][lod].shape[1]
            gx = torch.Generator().manual_seed(seed + 1 + 2 * lod + offset)
            gy = torch.Generator().manual_seed(seed + 2 + 2 * lod + offset)
            xs = torch.randint(3, h - 3, (n * nhoods,), generator=gx).numpy()
            ys = torch.randint(3, h - 3, (n * nhoods,), generator=gy).numpy()
            patches = []
            for j in range(n * nhoods):
                level = pyramids[j // nhoods][lod]
                # PGGAN/MMagic lay a patch out as [channel, x, y]: the transpose of the image crop
                patches.append(level[:, ys[j] - 3 : ys[j] + 4, xs[j] - 3 : xs[j] + 4].transpose(0, 2, 1))
            d = np.stack(patches)
            d = (d - d.mean(axis=(0, 2, 3), keepdims=True)) / d.std(axis=(0, 2, 3), ddof=1, keepdims=True)
            descs[kind].append(d.reshape(len(d), -1))
    gen = torch.Generator().manual_seed(seed)
    distances = []
    for lod in range(num_levels):
        a, b = descs["real"][lod], descs["fake"][lod]
        results = []
        for _ in range(repeats):
            dirs = torch.randn(a.shape[1], dirs_per, generator=gen).double().numpy()
            dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
            results.append(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)).mean())
        distances.append(np.mean(results) * 1e3)
    return distances + [np.mean(distances)]


def test_swd_matches_loop_reference():
    real = smooth_images(3, 32, seed=3)
    fake = smooth_images(3, 32, seed=4) * 0.8 + 20
    result = swd(torch.from_numpy(real).float(), torch.from_numpy(fake).float(), seed=5)
    assert list(result) == ["32", "16", "avg"]
    expected = ref_swd(real, fake, seed=5)
    np.testing.assert_allclose([result["32"], result["16"], result["avg"]], expected, rtol=1e-3)


def test_swd_properties():
    real = torch.from_numpy(smooth_images(4, 32, seed=6)).float()
    fake = torch.from_numpy(smooth_images(4, 32, seed=7)).float()
    value = swd(real, fake, seed=1)
    assert value["avg"] > 1.0
    # a set against itself: real and fake patches are drawn at independent positions (as MMagic),
    # so only the sampling term is left: not 0, and below the distance to another set
    itself = swd(real, real, seed=1)
    assert all(v > 0.0 for v in itself.values()) and itself["avg"] < 0.5 * value["avg"]
    assert swd(real, fake, seed=1) == value  # deterministic for a seed
    assert swd(real, fake, seed=2) != value
    # the batch split does not matter, nor does streaming real and fake separately
    assert swd(real, fake, seed=1, batch_size=3) == pytest.approx(value, rel=1e-6)
    metric = SlicedWassersteinDistance(32, value_range=(-1, 1), seed=1)
    metric.update(real=real[:2] / 127.5 - 1)
    metric.update(fake=fake / 127.5 - 1)
    metric.update(real=real[2:] / 127.5 - 1)
    assert metric.compute() == pytest.approx(value, rel=1e-5)
    # uint8 input is read as [0, 255]; grayscale is compared as three equal channels
    gray = swd(real[:, :1].round().to(torch.uint8), fake[:, :1].round().to(torch.uint8))
    gray3 = swd(real[:, :1].round().repeat(1, 3, 1, 1), fake[:, :1].round().repeat(1, 3, 1, 1))
    assert gray == pytest.approx(gray3, rel=1e-6)
    # 64 px images give MMagic's three levels; 256 px would stop at 4
    assert list(SlicedWassersteinDistance(64).resolutions) == [64, 32, 16]
    assert list(SlicedWassersteinDistance(256).resolutions) == [256, 128, 64, 32]


def photo_crops(n, size, seed):
    """(n, 3, size, size) float64 crops in [0, 255] of the photographs shipped with hfmagic."""
    root = Path(hfmagic.__file__).parent / "assets" / "sr"
    photos = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) for f in sorted(root.glob("*/*.png"))]
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        photo = photos[rng.randint(len(photos))]
        y, x = rng.randint(0, photo.shape[0] - size + 1), rng.randint(0, photo.shape[1] - size + 1)
        out.append(photo[y : y + size, x : x + size].transpose(2, 0, 1))
    return np.stack(out)


def mmagic_swd(real, fake, seed, batch_size=64, nhoods=128, nhood_size=7, repeats=4, dirs_per=128):
    """MMagic's SlicedWassersteinDistance procedure as written there: one global random stream
    (here a RandomState) draws, batch by batch, the real then the fake patch positions (x, then y,
    per level), then the directions. real, fake: (N, 3, H, W) in [0, 255]. The pyramid is
    hfmagic's (checked against loops above); what this pins is the sampling."""
    rng = np.random.RandomState(seed)
    num_levels = len(swd_resolutions(real.shape[-1]))
    descs = {"real": [[] for _ in range(num_levels)], "fake": [[] for _ in range(num_levels)]}

    def descriptors_for_minibatch(minibatch):  # MMagic's get_descriptors_for_minibatch
        shape = minibatch.shape
        count, half = nhoods * shape[0], nhood_size // 2
        nhood, chan, x, y = np.ogrid[0:count, 0:3, -half : half + 1, -half : half + 1]
        img = nhood // nhoods
        x = x + rng.randint(half, shape[3] - half, size=(count, 1, 1, 1))
        y = y + rng.randint(half, shape[2] - half, size=(count, 1, 1, 1))
        idx = ((img * shape[1] + chan) * shape[2] + y) * shape[3] + x
        return minibatch.reshape(-1)[idx]

    for start in range(0, len(real), batch_size):
        for kind, images in (("real", real), ("fake", fake)):
            batch = (torch.from_numpy(images[start : start + batch_size]).float() - 127.5) / 127.5
            for lod, level in enumerate(laplacian_pyramid(batch, num_levels)):
                descs[kind][lod].append(descriptors_for_minibatch(level.numpy()))
    distances = []
    for lod in range(num_levels):
        a = normalize_descriptors(torch.from_numpy(np.concatenate(descs["real"][lod]))).double().numpy()
        b = normalize_descriptors(torch.from_numpy(np.concatenate(descs["fake"][lod]))).double().numpy()
        results = []
        for _ in range(repeats):
            dirs = rng.randn(a.shape[1], dirs_per)
            dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
            results.append(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)).mean())
        distances.append(np.mean(results) * 1e3)
    return distances + [np.mean(distances)]


def test_swd_expected_value_is_mmagics():
    """The estimator, not only its determinism: averaged over seeds, hfmagic's SWD of photo crops
    against blurred copies of themselves equals MMagic's procedure's. Paired sets are where shared
    real/fake patch positions bias SWD low (the old estimator read 20.9 / 4.5 at 32 / 16 px here,
    against MMagic's 29.1 / 13.6)."""
    real = photo_crops(48, 64, seed=0)
    fake = gaussian_filter(real, sigma=(0, 0, 1.0, 1.0))
    seeds = range(4)
    ours = np.mean([list(swd(torch.from_numpy(real).float(), torch.from_numpy(fake).float(), seed=s).values()) for s in seeds], axis=0)
    theirs = np.mean([mmagic_swd(real, fake, seed=s) for s in seeds], axis=0)
    # levels 64, 32, 16 and the average; the spread over seeds is a few percent
    np.testing.assert_allclose(ours, theirs, rtol=0.12)


def test_swd_errors():
    real = torch.rand(4, 3, 16, 16)
    with pytest.raises(ValueError, match="equally many"):
        swd(real, real[:3])
    with pytest.raises(ValueError, match="at least 16x16"):
        SlicedWassersteinDistance(8)
    metric = SlicedWassersteinDistance(16)
    with pytest.raises(ValueError, match="image_size=16"):
        metric.update(real=torch.rand(2, 3, 32, 32))
    metric.update(real=real)
    with pytest.raises(ValueError, match="4 real and 0 fake"):
        metric.compute()


# ------------------------------------------------------------------ FID
def random_stats(rng, dim, n):
    feats = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) + rng.normal(size=dim)
    return feats.mean(0), np.atleast_2d(np.cov(feats, rowvar=False))


def scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.RandomState(0)
    for dim, n in ((1, 50), (8, 100), (32, 400)):
        mu1, s1 = random_stats(rng, dim, n)
        mu2, s2 = random_stats(rng, dim, n)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_fid(mu1, s1, mu2, s2), rel=1e-6)
        assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6 * np.trace(s1))
    # scalar case by hand: (m1 - m2)^2 + (sqrt(v1) - sqrt(v2))^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # rank-deficient covariances (fewer samples than dimensions) still give a finite value
    mu1, s1 = random_stats(rng, 16, 5)
    mu2, s2 = random_stats(rng, 16, 5)
    assert math.isfinite(frechet_distance(mu1, s1, mu2, s2))
    with pytest.raises(ValueError, match="Shapes do not match"):
        frechet_distance(mu1, s1, mu2[:3], s2)


class TinyInception(torch.nn.Module):
    """StyleGAN-detector-like interface: uint8 NCHW -> features with return_features=True."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = x.to(torch.float32) / 255.0
        feats = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        feats = torch.cat([feats, feats**2], dim=1)
        if return_features:
            return feats
        return feats.sum(dim=1, keepdim=True)


def test_fid_with_scripted_extractor(tmp_path):
    path = tmp_path / "tiny_inception.pt"
    torch.jit.script(TinyInception()).save(str(path))
    rng = np.random.RandomState(0)
    real = torch.from_numpy(rng.randint(0, 256, (40, 3, 16, 16)).astype(np.uint8))
    fake = torch.from_numpy(np.clip(rng.normal(150, 40, (40, 3, 16, 16)), 0, 255).astype(np.uint8))
    assert fid(real, real, path) == pytest.approx(0.0, abs=1e-8)

    # independent: features by hand, then scipy's sqrtm
    def feats(x):
        x = x.double().numpy() / 255.0
        pooled = x.reshape(len(x), 3, 2, 8, 2, 8).mean(axis=(3, 5)).reshape(len(x), -1)
        return np.concatenate([pooled, pooled**2], axis=1)

    mu_r, s_r = feature_statistics(feats(real))
    mu_f, s_f = feature_statistics(feats(fake))
    assert fid(real, fake, path, batch_size=7) == pytest.approx(scipy_fid(mu_f, s_f, mu_r, s_r), rel=1e-4)
    # float images: [0, 255] by default; (-1, 1) with value_range, truncated to uint8 as MMagic does
    assert fid(real.float(), fake, path) == fid(real, fake, path)
    as_float = torch.from_numpy(rng.uniform(-1, 1, (40, 3, 16, 16)))
    truncated = ((as_float + 1) * 127.5).to(torch.uint8)
    assert fid(as_float, fake, path, value_range=(-1, 1)) == pytest.approx(fid(truncated, fake, path), rel=1e-9)


def test_fid_missing_or_wrong_file(tmp_path):
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt"):
        fid(images, images, tmp_path / "nope.pt")
    bad = tmp_path / "state_dict.pt"
    torch.save({"w": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a TorchScript file"):
        fid(images, images, bad)


# --------------------------------------------------------------------------- Inception Score


def scipy_inception_score(probs, splits):
    """MMagic's loop: scipy's entropy(p(y|x), p(y)) per image, exp of the mean per part."""
    from scipy.stats import entropy

    size = len(probs) // splits
    scores = []
    for k in range(splits):
        part = probs[k * size : (k + 1) * size]
        py = part.mean(axis=0)
        scores.append(np.exp(np.mean([entropy(row, py) for row in part])))
    return np.mean(scores), np.std(scores)


def test_inception_score_hand_computed_values():
    one_hot = np.array([[1.0, 0.0], [0.0, 1.0]] * 2)
    assert inception_score_from_probabilities(one_hot, splits=1) == pytest.approx((2.0, 0.0))  # exp(log 2)
    assert inception_score_from_probabilities(np.full((6, 3), 1 / 3), splits=3) == pytest.approx((1.0, 0.0))
    # two parts of 2 (the 5th image dropped): part 1 distinct one-hot -> 2, part 2 identical -> 1
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7], [0.3, 0.7], [0.9, 0.1]])
    assert inception_score_from_probabilities(probs, splits=2) == pytest.approx((1.5, 0.5))
    # against scipy on random softmax outputs, with unnormalised rows (scipy normalises them)
    logits = np.random.RandomState(0).normal(0, 2, (103, 7))
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for splits in (1, 4, 10):
        ours = inception_score_from_probabilities(torch.from_numpy(soft * 1.01), splits)
        assert ours == pytest.approx(scipy_inception_score(soft, splits), rel=1e-10)


def test_inception_score_errors():
    with pytest.raises(ValueError, match="splits=10"):
        inception_score_from_probabilities(np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="not logits"):
        inception_score_from_probabilities(np.array([[-1.0, 2.0], [0.5, 0.5]]), splits=1)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        inception_score_from_probabilities(np.ones(4), splits=1)


class TinyClassifier(torch.nn.Module):
    """StyleGAN-detector-like: uint8 NCHW -> probabilities of 5 classes with no_output_bias=True;
    records the size of the last input."""

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.linspace(-3, 3, 5 * 12).reshape(5, 12))
        self.register_buffer("last_size", torch.zeros(2, dtype=torch.long))

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        self.last_size.copy_(torch.tensor(x.shape[2:]))
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.to(torch.float32) / 255.0, 2).flatten(1)
        logits = pooled @ self.weight.t()
        if not no_output_bias:
            logits = logits + 1.0
        return torch.softmax(logits, dim=1)


def _pil_bicubic_299(images):
    from PIL import Image

    return torch.stack(
        [torch.from_numpy(np.array(Image.fromarray(im.permute(1, 2, 0).numpy()).resize((299, 299), Image.BICUBIC))) for im in images]
    ).permute(0, 3, 1, 2)


def test_inception_score_with_a_scripted_network(tmp_path):
    from hfmagic.metrics import inception_probabilities, load_inception

    path = tmp_path / "tiny_classifier.pt"
    torch.jit.script(TinyClassifier()).save(str(path))
    rng = np.random.RandomState(0)
    fake = torch.from_numpy(rng.uniform(-1, 1, (30, 3, 16, 16)).astype(np.float32))
    # by hand: truncate to uint8, Pillow bicubic to 299, the network without its output bias
    as_uint8 = ((fake + 1) * 127.5).to(torch.uint8)
    expected = TinyClassifier()(_pil_bicubic_299(as_uint8), no_output_bias=True).double().numpy()
    model = load_inception(path)
    probs = inception_probabilities(model, fake, value_range=(-1, 1), batch_size=7)
    assert tuple(model.last_size.tolist()) == (299, 299)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    score = inception_score(fake, path, value_range=(-1, 1), splits=3)
    assert score == pytest.approx(scipy_inception_score(expected, 3), rel=1e-5)
    assert score[0] > 1.0
    # resize=False feeds the images as they are
    inception_probabilities(model, as_uint8, resize=False)
    assert tuple(model.last_size.tolist()) == (16, 16)


def test_inception_score_softmax_for_a_plain_classifier():
    """A module without ``no_output_bias`` (a torchvision-style Inception) gets float images in
    [-1, 1] and returns logits: softmax is applied (MMagic's non-StyleGAN path)."""
    from hfmagic.metrics import inception_probabilities

    class Logits(torch.nn.Module):
        def forward(self, x):
            assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
            return 4 * x.mean(dim=(2, 3))  # (N, 3) "logits"

    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    probs = inception_probabilities(Logits(), images, resize=False)
    expected = torch.softmax(4 * ((images.float() - 127.5) / 127.5).mean(dim=(2, 3)), dim=1)
    np.testing.assert_allclose(probs, expected.double().numpy(), rtol=1e-6)
    gray = inception_probabilities(Logits(), images[:, :1], resize=False)  # grayscale repeated to RGB
    assert np.allclose(gray, 1 / 3)
