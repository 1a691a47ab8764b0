"""16-bit image files: PNG (all filters, interlaced), TIFF (compressions, predictor, strips, tiles,
planes, byte orders), PPM, orientation, and the 16-bit PNG writer. Files are written byte by byte
here, independently of the decoder, and checked against Pillow's own (8-bit) reading of them."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hfmagic.data.image16 import encode_png16, read_image, save_image

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def noise16(h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (h, w, c)).astype(np.uint16)


# ---- a reference PNG writer: per-byte Python, each row with a chosen filter


def _chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(image, first_filter=0):
    """(h, w, c) uint16 -> filtered scanlines, row y with filter (first_filter + y) % 5."""
    h, w, c = image.shape
    bpp = 2 * c
    rows = [list(image[y].astype(">u2").tobytes()) for y in range(h)]
    out = bytearray()
    for y, row in enumerate(rows):
        kind = (first_filter + y) % 5
        prior = rows[y - 1] if y else [0] * len(row)
        out.append(kind)
        for x, value in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b, d = prior[x], prior[x - bpp] if x >= bpp else 0
            predicted = [0, a, b, (a + b) // 2, _paeth(a, b, d)][kind]
            out.append((value - predicted) % 256)
    return bytes(out)


def reference_png(image, interlace=False):
    h, w, c = image.shape
    if interlace:
        data = b"".join(
            _filtered(image[y0::dy, x0::dx], first_filter=i)
            for i, (x0, y0, dx, dy) in enumerate(ADAM7)
            if w > x0 and h > y0
        )
    else:
        data = _filtered(image)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [2, 3, 4])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_every_filter_and_adam7(channels, interlace):
    for h, w in ((11, 9), (1, 1), (3, 10)):
        image = noise16(h, w, channels, seed=h)
        image[: h // 2] = np.linspace(0, 65535, w * channels).reshape(w, channels).astype(np.uint16)  # smooth rows too
        data = reference_png(image, interlace)
        decoded = read_image(data)
        assert isinstance(decoded, np.ndarray) and decoded.dtype == np.uint16
        np.testing.assert_array_equal(decoded, image)
        with Image.open(io.BytesIO(data)) as pillow:  # the file is valid: Pillow reads its high bytes
            eight = np.asarray(pillow.convert("RGBA" if channels in (2, 4) else "RGB"))
        high = (image >> 8).astype(np.uint8)
        expected = np.concatenate([high[..., :1]] * 3 + [high[..., 1:]], axis=2) if channels == 2 else high
        np.testing.assert_array_equal(eight, expected)


def test_gray_png_stays_a_pil_image_and_8bit_files_are_unchanged(tmp_path):
    gray = noise16(6, 5, 1)[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    image = read_image(tmp_path / "gray.png")
    assert isinstance(image, Image.Image) and image.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(image), gray)
    rgb = (noise16(6, 5, 3) >> 8).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image = read_image(str(tmp_path / "rgb.png"))
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), rgb)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png16_round_trips_and_pillow_agrees(channels, tmp_path):
    image = noise16(37, 29, channels)
    image[:20] = np.linspace(0, 65535, 29 * channels).reshape(29, channels).astype(np.uint16)  # smooth rows too
    save_image(image, tmp_path / "out.png")
    data = (tmp_path / "out.png").read_bytes()
    assert data[24:26] == bytes([16, {1: 0, 2: 4, 3: 2, 4: 6}[channels]])  # IHDR: 16-bit, the right colour type
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    filters = set(zlib.decompress(data[at + 4 : at + 4 + length])[:: 1 + 29 * channels * 2])
    assert filters == {4}  # Paeth on every row
    decoded = read_image(data)
    decoded = np.asarray(decoded)[:, :, None] if channels == 1 else decoded
    np.testing.assert_array_equal(decoded, image)
    if channels == 1:
        with Image.open(tmp_path / "out.png") as pillow:
            np.testing.assert_array_equal(np.asarray(pillow), image[:, :, 0])
    with pytest.raises(ValueError, match=r"\.png"):
        save_image(image, tmp_path / "out.tif")
    with pytest.raises(ValueError, match="uint8 or uint16"):
        save_image(image.astype(np.float32), tmp_path / "out.png")


def test_large_image_is_encoded_in_blocks():
    image = np.tile(np.arange(600, dtype=np.uint16)[:, None, None] * 97, (1, 3, 3))  # > 256 rows
    np.testing.assert_array_equal(read_image(encode_png16(image)), image)


# ---- TIFF: a minimal writer of strips/tiles with the layouts libtiff writers produce


def _lzw(samples_2d):
    """LZW bytes of a (rows, n) uint16 block (little-endian samples), made by Pillow's libtiff."""
    buffer = io.BytesIO()
    Image.fromarray(samples_2d).save(buffer, format="TIFF", compression="tiff_lzw")
    with Image.open(buffer) as gray:
        start, count = gray.tag_v2[273][0], gray.tag_v2[279][0]
    return buffer.getvalue()[start : start + count]


def write_tiff(image, compression=1, predictor=1, rows_per_strip=None, tile=None, planar=1, endian="<", extra=2):
    h, w, c = image.shape
    planes = [image[:, :, k : k + 1] for k in range(c)] if planar == 2 else [image]
    bw, bh = (tile, tile) if tile else (w, rows_per_strip or h)
    blocks = []
    for plane in planes:
        for top in range(0, h, bh):
            for left in range(0, w, bw):
                block = plane[top : top + bh, left : left + bw]
                if tile:  # edge tiles are stored full size
                    block = np.pad(block, ((0, bh - block.shape[0]), (0, bw - block.shape[1]), (0, 0)))
                if predictor == 2:
                    block = np.diff(block, axis=1, prepend=np.zeros_like(block[:, :1])).astype(np.uint16)
                flat = block.reshape(block.shape[0], -1)
                raw = flat.astype(f"{endian}u2").tobytes()
                raw = zlib.compress(raw) if compression in (8, 32946) else _lzw(flat) if compression == 5 else raw
                blocks.append(raw)
    tags = {256: (4, [w]), 257: (4, [h]), 258: (3, [16] * c), 259: (3, [compression]), 262: (3, [2]), 277: (3, [c]), 284: (3, [planar])}
    if predictor != 1:
        tags[317] = (3, [predictor])
    if c == 4:
        tags[338] = (3, [extra])
    sizes = [len(b) for b in blocks]
    tags.update({322: (4, [bw]), 323: (4, [bh]), 324: (4, sizes), 325: (4, sizes)} if tile else {273: (4, sizes), 278: (4, [bh]), 279: (4, sizes)})

    def pack(kind, values):
        return b"".join(struct.pack(f"{endian}{'H' if kind == 3 else 'I'}", v) for v in values)

    outside = sum(len(pack(k, v)) for k, v in tags.values() if len(pack(k, v)) > 4)
    extra_at = 8 + 2 + 12 * len(tags) + 4
    offsets = list(np.cumsum([extra_at + outside] + sizes[:-1]))
    tags[324 if tile else 273] = (4, offsets)
    head = bytearray((b"II" if endian == "<" else b"MM") + struct.pack(f"{endian}HIH", 42, 8, len(tags)))
    tail = bytearray()
    for tag in sorted(tags):
        kind, values = tags[tag]
        packed = pack(kind, values)
        field = packed.ljust(4, b"\0") if len(packed) <= 4 else struct.pack(f"{endian}I", extra_at + len(tail))
        tail += b"" if len(packed) <= 4 else packed
        head += struct.pack(f"{endian}HHI", tag, kind, len(values)) + field
    return bytes(head + struct.pack(f"{endian}I", 0) + tail + b"".join(blocks))


TIFF_LAYOUTS = [
    {},
    {"compression": 8, "predictor": 2},
    {"compression": 5},
    {"compression": 5, "predictor": 2, "rows_per_strip": 3},
    {"rows_per_strip": 4, "endian": ">"},
    {"compression": 32946, "predictor": 2, "endian": ">", "rows_per_strip": 5},
    {"tile": 16, "compression": 8, "predictor": 2},
    {"tile": 16, "planar": 2, "compression": 5},
    {"planar": 2, "rows_per_strip": 7, "predictor": 2, "compression": 8, "endian": ">"},
]


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("layout", TIFF_LAYOUTS, ids=lambda d: "-".join(f"{k}{v}" for k, v in d.items()) or "plain")
def test_tiff_16bit_colour(channels, layout):
    image = noise16(21, 35, channels, seed=channels)
    data = write_tiff(image, **layout)
    with Image.open(io.BytesIO(data)) as pillow:  # a valid file: Pillow reads its high bytes
        np.testing.assert_array_equal(np.asarray(pillow), (image >> 8).astype(np.uint8))
    decoded = read_image(data)
    assert isinstance(decoded, np.ndarray) and decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, image)


def test_tiff_alpha_kinds():
    image = noise16(5, 6, 4)
    image[0, 0, 3] = 0
    np.testing.assert_array_equal(read_image(write_tiff(image, extra=0)), image[:, :, :3])  # unspecified: RGBX
    premultiplied = read_image(write_tiff(image, extra=1))
    alpha = image[:, :, 3:].astype(np.float64)
    expected = np.where(alpha > 0, np.clip(np.rint(image[:, :, :3] * 65535.0 / np.maximum(alpha, 1)), 0, 65535), 0)
    np.testing.assert_array_equal(premultiplied[:, :, :3], expected)
    np.testing.assert_array_equal(premultiplied[:, :, 3], image[:, :, 3])


def test_ppm_16bit():
    image = noise16(4, 5, 3)
    np.testing.assert_array_equal(read_image(b"P6 5 4 65535\n" + image.astype(">u2").tobytes()), image)
    small = (image % 1024).astype(np.uint16)
    expected = np.rint(small * (65535 / 1023)).astype(np.uint16)
    np.testing.assert_array_equal(read_image(b"P6 5 4 1023\n" + small.astype(">u2").tobytes()), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation, tmp_path):
    image = noise16(3, 5, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    eight = Image.fromarray((image >> 8).astype(np.uint8))
    eight.save(tmp_path / "eight.png", exif=exif)
    # the same eXIf chunk in a 16-bit file
    with open(tmp_path / "eight.png", "rb") as handle:
        data = handle.read()
    start = data.index(b"eXIf") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    png = encode_png16(image)
    deep = png[:33] + data[start : start + 12 + length] + png[33:]
    expected = np.asarray(read_image(tmp_path / "eight.png"))  # Pillow's exif_transpose
    decoded = read_image(deep)
    assert decoded.shape[:2] == expected.shape[:2] == ((3, 5) if orientation < 5 else (5, 3))
    np.testing.assert_array_equal((decoded >> 8).astype(np.uint8), expected)


def test_corrupt_16bit_data_is_a_value_error():
    data = bytearray(encode_png16(noise16(4, 4, 3)))
    idat = data.index(b"IDAT")
    short = zlib.compress(zlib.decompress(bytes(data[idat + 4 : -16]))[:-10])
    broken = bytes(data[: idat - 4]) + _chunk(b"IDAT", short) + _chunk(b"IEND", b"")
    with pytest.raises(ValueError, match="truncated"):
        read_image(broken)
