"""The H&E image a model sees: loaded, cropped to the tissue, letterboxed to 896x896.

The analysis stage stores the sample's image in its output folder (``he_image.png``,
named in ``analysis.json``); Space Ranger's ``tissue_hires_image.png`` (or the lowres
one) with ``scalefactors_json.json`` is taken when that is absent. Images are rebuilt
from pixels, so no file metadata (names, paths, text chunks) ever reaches a model.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import CorruptFile
from core.jsonable import JSONObject, JSONValue
from core.results import ImageInfo

MODEL_IMAGE_SIZE = 896
Image.MAX_IMAGE_PIXELS = None  # size is checked by preflight before analysis


@dataclass
class PreparedImages:
    """Images for the model (first the overview, then tiles) and what was done to them."""

    images: list[Image.Image] = field(default_factory=list)
    info: JSONObject = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return bool(self.images)


def to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """An image array as RGB uint8: float [0, 1] or [0, 255], uint8/uint16, RGBA, greyscale.

    Transparent pixels of an RGBA image become white.
    """
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise CorruptFile(f"image has shape {a.shape}; expected HxW, HxWx3 or HxWx4")
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.integer):
        f = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    else:
        f = np.nan_to_num(a.astype(np.float32))
        if f.size and float(f.max()) > 1.0:
            f = f / 255.0
    f = np.clip(f, 0.0, 1.0)
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    elif f.shape[2] == 4:
        alpha = f[:, :, 3:4]
        f = f[:, :, :3] * alpha + (1.0 - alpha)
    return np.round(f * 255.0).astype(np.uint8)


def letterbox(img: Image.Image, size: int = MODEL_IMAGE_SIZE) -> Image.Image:
    """Fit ``img`` inside a ``size`` x ``size`` white square, keeping its aspect ratio."""
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = img.resize((nw, nh), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(resized, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I"):
                return np.asarray(im, dtype=np.uint16 if im.mode != "I" else np.int32)
            if im.mode not in ("RGB", "RGBA", "L"):
                return np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
            return np.asarray(im)
    except OSError as e:
        raise CorruptFile(f"cannot read image {path.name}: {e}") from e


def find_image(out_dir: Path, image: ImageInfo | None) -> tuple[Path | None, float, float | None]:
    """The image file of an output folder, its scale (image px per full-res px), spot diameter.

    ``image``: what ``analysis.json`` says of the image (``None``: nothing). Order: the file it
    names; ``tissue_hires_image.png``; ``tissue_lowres_image.png`` (in the folder or its
    ``spatial/``, with Space Ranger's ``scalefactors_json.json``).
    """
    spot = image.spot_diameter_px if image else None
    meta_scalef = image.scalef if image else None
    if image and image.file:
        p = out_dir / image.file
        if p.is_file():
            return p, float(meta_scalef or 1.0), float(spot) if spot else None
    for folder in (out_dir, out_dir / "spatial"):
        sf_path = folder / "scalefactors_json.json"
        sf = json.loads(sf_path.read_text()) if sf_path.is_file() else {}
        spot = spot or sf.get("spot_diameter_fullres")
        for res in ("hires", "lowres"):
            p = folder / f"tissue_{res}_image.png"
            if p.is_file():
                scalef = sf.get(f"tissue_{res}_scalef") or meta_scalef or 1.0
                return p, float(scalef), float(spot) if spot else None
    return None, 1.0, None


def read_spot_table(out_dir: Path) -> list[dict[str, str]]:
    """Rows of ``spots.csv`` (empty when absent)."""
    p = out_dir / "spots.csv"
    if not p.is_file():
        return []
    with p.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _spot_xy(rows: list[dict[str, str]]) -> np.ndarray:
    try:
        return np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=float).reshape(-1, 2)
    except (KeyError, ValueError):
        return np.zeros((0, 2))


def tissue_box(
    xy_img: np.ndarray, radius_img: float, shape: tuple[int, int], margin: float = 0.03
) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the spots in image pixels, padded and clipped."""
    h, w = shape
    if len(xy_img) == 0:
        return 0, 0, w, h
    lo = xy_img.min(0) - radius_img
    hi = xy_img.max(0) + radius_img
    pad = margin * float(max(hi - lo))
    x0, y0 = (int(max(0, np.floor(v - pad))) for v in lo)
    x1, y1 = int(min(w, np.ceil(hi[0] + pad))), int(min(h, np.ceil(hi[1] + pad)))
    if x1 <= x0 or y1 <= y0:
        return 0, 0, w, h
    return x0, y0, x1, y1


def _distinct_domains(rows: list[dict[str, str]], n: int) -> list[str]:
    """Domains whose cell-type mix differs most from the whole section (most distinct first)."""
    by_dom: dict[str, dict[str, int]] = {}
    total: dict[str, int] = {}
    for r in rows:
        d, t = r.get("domain", ""), r.get("cell_type", "")
        by_dom.setdefault(d, {}).setdefault(t, 0)
        by_dom[d][t] += 1
        total[t] = total.get(t, 0) + 1
    n_all = sum(total.values()) or 1
    score = {}
    for d, counts in by_dom.items():
        nd = sum(counts.values())
        score[d] = 0.5 * sum(abs(counts.get(t, 0) / nd - total[t] / n_all) for t in total)
    return sorted(score, key=lambda d: (-score[d], d))[:n]


def prepare_images(
    out_dir: Path, image: ImageInfo | None, tiles: int = 0, size: int = MODEL_IMAGE_SIZE
) -> PreparedImages:
    """Overview (cropped to the tissue, letterboxed) plus ``tiles`` views of distinct domains.

    An output folder without an image gives an empty :class:`PreparedImages`.
    """
    path, scalef, spot = find_image(out_dir, image)
    if path is None:
        return PreparedImages(info={"available": False, "reason": "no H&E image in the sample"})
    rgb = to_rgb_uint8(_read_png(path))
    rows = read_spot_table(out_dir)
    xy = _spot_xy(rows) * scalef
    radius = (spot or 0.0) * scalef / 2.0
    box = tissue_box(xy, radius, rgb.shape[:2])
    x0, y0, x1, y1 = box
    overview = letterbox(Image.fromarray(rgb[y0:y1, x0:x1]), size)
    images = [overview]
    tile_info: list[JSONValue] = []
    if tiles > 0 and len(rows) == len(xy) and len(xy):
        side = max(32, int(max(x1 - x0, y1 - y0) / 4))
        domains = np.array([r.get("domain", "") for r in rows])
        for d in _distinct_domains(rows, tiles):
            pts = xy[domains == d]
            if not len(pts):
                continue
            centre = pts[np.argmin(((pts - np.median(pts, 0)) ** 2).sum(1))]
            cx, cy = int(centre[0]), int(centre[1])
            tx0, ty0 = max(0, cx - side // 2), max(0, cy - side // 2)
            tx1, ty1 = min(rgb.shape[1], tx0 + side), min(rgb.shape[0], ty0 + side)
            images.append(letterbox(Image.fromarray(rgb[ty0:ty1, tx0:tx1]), size))
            tile_info.append({"domain": d, "box": [tx0, ty0, tx1, ty1]})
    info: JSONObject = {
        "available": True,
        "source_shape": list(rgb.shape[:2]),
        "scalef": scalef,
        "crop_box": list(box),
        "size": [size, size],
        "tiles": tile_info,
    }
    return PreparedImages(images=images, info=info)


def png_bytes(img: Image.Image) -> bytes:
    """PNG encoding of an image, without any metadata chunks."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
