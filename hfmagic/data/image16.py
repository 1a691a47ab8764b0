"""16-bit colour images that Pillow reads as 8-bit: decoded losslessly, and written as 16-bit PNG.

Pillow holds 16-bit grayscale ("I;16", "I") but has no 16-bit colour mode: it opens 16-bit RGB,
RGBA and gray+alpha PNGs, 16-bit RGB(A) TIFFs and 16-bit PPMs as 8-bit "RGB"/"RGBA", keeping the
high byte of every sample. :func:`read_image` decodes those files here instead, using Pillow only
for what it does losslessly, so no dependency is added:

- PNG: the zlib stream is inflated, and each byte lane of the pixels (the high and the low byte of
  every channel) is handed back to Pillow as an 8-bit grayscale PNG, whose C decoder undoes the
  row filters. This is exact: PNG filters predict a byte from the bytes one pixel to the left and
  one row up, which are bytes of the same lane. Interlaced (Adam7) files are decoded pass by pass.
- TIFF (strips or tiles, chunky or planar, either byte order): uncompressed and Deflate data are
  read with numpy and zlib; other compressions (LZW, PackBits, ZSTD...) by wrapping each strip in a
  16-bit grayscale TIFF that Pillow's libtiff decodes. The horizontal predictor is undone here.
  Associated (premultiplied) alpha is unpremultiplied, as Pillow does for 8-bit files.
- PPM (P6) with a maximum value above 255: raw big-endian samples, scaled to 0..65535.

EXIF/TIFF orientation is applied, as ``ImageOps.exif_transpose`` does for the images Pillow reads.
:func:`save_image` writes uint16 arrays (H, W), (H, W, 1..4) as 16-bit PNG (own encoder: Pillow
cannot write 16-bit colour) and everything else through Pillow.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageOps

__all__ = ["read_image", "save_image", "decode_16bit", "encode_png16", "truncated_by_pillow"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # x0, y0, dx, dy
# EXIF orientation -> numpy version of the transpose ImageOps.exif_transpose applies.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
_TIFF_DEFLATE = (8, 32946)
_ROWS_PER_IDAT_BLOCK = 256  # rows filtered and compressed at a time when writing (bounds memory)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(source: Any) -> Image.Image | np.ndarray:
    """Open an image file (path, bytes or file object) with its full bit depth.

    Returns a loaded PIL image with its EXIF orientation applied, except for the 16-bit colour files
    Pillow would truncate (see the module docstring): those come back as uint16 arrays (H, W, C),
    C = 2 (gray + alpha), 3 or 4, also orientation-corrected. 16-bit grayscale stays a PIL "I;16"
    (or "I") image. Raises what ``Image.open`` raises for unreadable files, ``ValueError`` for a
    16-bit layout this module cannot decode.
    """
    data = _read_bytes(source)
    with Image.open(io.BytesIO(data)) as image:
        array = decode_16bit(image, data)
        if array is not None:
            orientation = image.getexif().get(0x0112, 1)
            return np.ascontiguousarray(_ORIENT.get(orientation, lambda a: a)(array))
        image.load()
        return ImageOps.exif_transpose(image)


def truncated_by_pillow(image: Image.Image) -> bool:
    """Whether an opened (not yet loaded) PIL image is a 16-bit colour file that Pillow would
    decode to 8 bits: a 16-bit RGB/RGBA/gray+alpha PNG, RGB(A) TIFF or PPM."""
    if image.mode not in ("RGB", "RGBA") or not image.tile:
        return False
    args = image.tile[0].args
    rawmode = args if isinstance(args, str) else args[0] if args else ""
    if image.format == "PNG":
        return isinstance(rawmode, str) and ";16" in rawmode
    if image.format == "TIFF":
        return _tiff_is_16bit_colour(image)
    return image.format == "PPM" and image.tile[0].codec_name == "ppm" and isinstance(args, tuple) and args[1] > 255


def decode_16bit(image: Image.Image, data: bytes) -> np.ndarray | None:
    """The stored pixels, uint16 (H, W, C), of an opened, not yet loaded, PIL image whose file
    (``data``) Pillow would truncate (:func:`truncated_by_pillow`); ``None`` for any other file.
    No orientation is applied (:func:`read_image` applies it)."""
    if not truncated_by_pillow(image):
        return None
    if image.format == "PNG":
        return _decode_png16(data)
    if image.format == "TIFF":
        return _decode_tiff16(image, data)
    return _decode_ppm16(image, data, image.tile[0].args[1])


def _read_bytes(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return handle.read()
    return source.read()


def _png_chunks(data: bytes) -> tuple[tuple[int, ...], bytes]:
    """(IHDR fields, concatenated IDAT payload) of a PNG."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, header, idat = len(_PNG_SIGNATURE), None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat.append(payload)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("PNG file without IHDR or IDAT chunks")
    return header, b"".join(idat)


def _decode_png16(data: bytes) -> np.ndarray:
    (width, height, depth, colour, _, _, interlace), idat = _png_chunks(data)
    if depth != 16 or colour not in _PNG_CHANNELS:
        raise ValueError(f"unexpected PNG layout (bit depth {depth}, colour type {colour})")
    channels = _PNG_CHANNELS[colour]
    stream = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    out = np.empty((height, width, channels), dtype=np.uint16)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    pos = 0
    for x0, y0, dx, dy in passes:
        w, h = math.ceil(max(width - x0, 0) / dx), math.ceil(max(height - y0, 0) / dy)
        if w == 0 or h == 0:
            continue  # an empty pass has no bytes, not even filter bytes
        size = h * (1 + 2 * channels * w)
        if pos + size > len(stream):
            raise ValueError("truncated PNG data")
        out[y0::dy, x0::dx] = _unfilter_lanes(stream[pos : pos + size].reshape(h, -1), w, channels)
        pos += size
    return out


def _unfilter_lanes(rows: np.ndarray, width: int, channels: int) -> np.ndarray:
    """Filtered rows (h, 1 + 2 * channels * width) of 16-bit samples -> uint16 (h, width, channels)."""
    filters, pixels = rows[:, :1], rows[:, 1:].reshape(rows.shape[0], width, 2 * channels)
    lanes = [_unfilter_gray8(np.concatenate([filters, pixels[:, :, k]], axis=1), width) for k in range(2 * channels)]
    high = np.stack(lanes[0::2], axis=2).astype(np.uint16)
    return (high << 8) | np.stack(lanes[1::2], axis=2)


def _unfilter_gray8(rows: np.ndarray, width: int) -> np.ndarray:
    """Let Pillow's C decoder undo the filters of an 8-bit grayscale PNG's rows (h, 1 + width)."""
    height = rows.shape[0]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = _PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)) + _chunk(b"IEND", b"")
    with Image.open(io.BytesIO(png)) as lane:
        return np.asarray(lane)


def _tiff_is_16bit_colour(image: Image.Image) -> bool:
    tags = image.tag_v2
    bits, formats = tags.get(258, (1,)), tags.get(339, (1,))
    return tags.get(262) == 2 and len(bits) >= 3 and all(b == 16 for b in bits) and all(f == 1 for f in formats)


def _decode_tiff16(image: Image.Image, data: bytes) -> np.ndarray:
    """Strips or tiles of a 16-bit RGB(A) TIFF -> uint16 (H, W, C) (extra samples beyond alpha dropped)."""
    tags = image.tag_v2
    width, height, samples = tags[256], tags[257], tags.get(277, 3)
    compression, predictor, planar = tags.get(259, 1), tags.get(317, 1), tags.get(284, 1)
    if predictor not in (1, 2):
        raise ValueError(f"16-bit TIFF with predictor {predictor} is not supported (1 and 2 are)")
    endian = ">" if data[:2] == b"MM" else "<"
    if 322 in tags:  # tiled
        block_w, block_h, offsets, counts = tags[322], tags[323], tags[324], tags[325]
    else:
        block_w, block_h = width, min(tags.get(278, height), height)
        offsets, counts = tags[273], tags[279]
    across, down = math.ceil(width / block_w), math.ceil(height / block_h)
    planes = samples if planar == 2 else 1
    per_block = 1 if planar == 2 else samples
    if len(offsets) < across * down * planes:
        raise ValueError(f"TIFF lists {len(offsets)} strips/tiles, {across * down * planes} expected")
    full = np.empty((planes, down * block_h, across * block_w, per_block), dtype=np.uint16)
    for i in range(across * down * planes):
        plane, index = divmod(i, across * down)
        row, col = divmod(index, across)
        rows = block_h if 322 in tags else min(block_h, height - row * block_h)  # the last strip may be short
        raw = data[offsets[i] : offsets[i] + counts[i]]
        block = _tiff_block(raw, compression, endian, rows, block_w * per_block).reshape(rows, block_w, per_block)
        if predictor == 2:  # horizontal differencing restarts at every row of every strip/tile
            block = np.cumsum(block, axis=1, dtype=np.uint16)
        full[plane, row * block_h : row * block_h + rows, col * block_w : (col + 1) * block_w] = block
    array = full.transpose(1, 2, 0, 3).reshape(down * block_h, across * block_w, samples)[:height, :width]
    extra = tags.get(338, ())
    extra = (extra,) if isinstance(extra, int) else tuple(extra)
    if samples == 3 or not extra or extra[0] == 0:  # no alpha (Pillow reads unspecified extras as RGBX)
        return array[:, :, :3]
    rgba = array[:, :, :4].copy()
    if extra[0] == 1:  # associated alpha: colour is premultiplied; unpremultiply like Pillow's RGBa
        alpha = rgba[:, :, 3:].astype(np.float64)
        colour = np.where(alpha > 0, rgba[:, :, :3] * 65535.0 / np.maximum(alpha, 1), 0)
        rgba[:, :, :3] = np.clip(np.rint(colour), 0, 65535).astype(np.uint16)
    return rgba


def _tiff_block(raw: bytes, compression: int, endian: str, rows: int, samples_per_row: int) -> np.ndarray:
    """One strip/tile's bytes -> its uint16 samples (rows * samples_per_row,), in native order."""
    count = rows * samples_per_row
    if compression == 1:
        decoded = raw
    elif compression in _TIFF_DEFLATE:
        decoded = zlib.decompress(raw)
    else:  # LZW, PackBits, ZSTD...: libtiff decodes it as a 16-bit grayscale image of the same bytes
        wrapper = _gray16_tiff(raw, compression, endian, samples_per_row, rows)
        try:
            with Image.open(io.BytesIO(wrapper)) as gray:
                return np.asarray(gray).astype(np.uint16).reshape(-1)[:count]
        except OSError as err:
            raise ValueError(f"16-bit TIFF with compression {compression} could not be decoded ({err})") from err
    if len(decoded) < 2 * count:
        raise ValueError("truncated 16-bit TIFF data")
    return np.frombuffer(decoded, dtype=f"{endian}u2", count=count).astype(np.uint16)


def _gray16_tiff(strip: bytes, compression: int, endian: str, width: int, height: int) -> bytes:
    """A one-strip 16-bit grayscale TIFF holding ``strip`` (compressed as ``compression``)."""
    order = b"II" if endian == "<" else b"MM"
    entries = [  # tag, type (3 SHORT, 4 LONG), value
        (256, 4, width), (257, 4, height), (258, 3, 16), (259, 3, compression), (262, 3, 1),
        (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(strip)), (284, 3, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    out = bytearray(order + struct.pack(f"{endian}HI", 42, 8) + struct.pack(f"{endian}H", len(entries)))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack(f"{endian}H", value) + b"\0\0" if kind == 3 else struct.pack(f"{endian}I", value)
        out += struct.pack(f"{endian}HHI", tag, kind, 1) + packed
    out += struct.pack(f"{endian}I", 0) + strip
    return bytes(out)


def _decode_ppm16(image: Image.Image, data: bytes, maxval: int) -> np.ndarray:
    width, height = image.size
    offset = image.tile[0].offset
    values = np.frombuffer(data, dtype=">u2", count=width * height * 3, offset=offset).reshape(height, width, 3)
    if maxval == 65535:
        return values.astype(np.uint16)
    return np.clip(np.rint(values * (65535.0 / maxval)), 0, 65535).astype(np.uint16)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike) -> None:
    """Save a PIL image (any format Pillow writes) or an array: uint16 (H, W) or (H, W, 1..4) as a
    16-bit PNG (gray, gray + alpha, RGB, RGBA; ``path`` must end in .png), uint8 through Pillow."""
    if isinstance(image, Image.Image):
        image.save(path)
        return
    if not isinstance(image, np.ndarray):
        raise TypeError(f"save_image takes a PIL image or a numpy array, got {type(image).__name__}.")
    if image.dtype == np.uint8:
        Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image).save(path)
        return
    if image.dtype != np.uint16:
        raise ValueError(f"save_image writes uint8 or uint16 arrays, got {image.dtype}.")
    if not os.fspath(path).lower().endswith(".png"):
        raise ValueError(f"16-bit images are written as PNG (Pillow cannot write 16-bit colour): use a .png name, not {os.fspath(path)!r}.")
    with open(path, "wb") as handle:
        handle.write(encode_png16(image))


def encode_png16(array: np.ndarray, compress_level: int = 6) -> bytes:
    """uint16 (H, W) or (H, W, C), C in 1..4 -> the bytes of a 16-bit PNG (Paeth filter, zlib at
    ``compress_level``, Pillow's default 6)."""
    if array.dtype != np.uint16:
        raise ValueError(f"encode_png16 takes a uint16 array, got {array.dtype}.")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape:
        raise ValueError(f"encode_png16 takes a (H, W) or (H, W, 1..4) array, got {array.shape}.")
    height, width, channels = array.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = array.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    compressor = zlib.compressobj(compress_level)
    parts = []
    for start in range(0, height, _ROWS_PER_IDAT_BLOCK):
        above = raw[start - 1 : start] if start else np.zeros((1, raw.shape[1]), np.uint8)
        rows = _filter_rows(raw[start : start + _ROWS_PER_IDAT_BLOCK], above, 2 * channels)
        parts.append(compressor.compress(rows.tobytes()))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def _filter_rows(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """Rows (h, n) uint8 and the row above them (1, n) -> Paeth-filtered rows (h, 1 + n), filter
    byte first. One filter for all rows: on upscaled photos Paeth is what libpng's per-row heuristic
    picks anyway (measured: the same size), at a fifth of the work."""
    x = rows.astype(np.int16)
    up = np.concatenate([above, rows[:-1]]).astype(np.int16)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    pa, pb, pc = np.abs(up - upleft), np.abs(left - upleft), np.abs(left + up - 2 * upleft)  # |p - left|, |p - up|, |p - upleft|
    predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    filtered = (x - predicted).astype(np.uint8)  # mod 256
    return np.concatenate([np.full((x.shape[0], 1), 4, dtype=np.uint8), filtered], axis=1)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
