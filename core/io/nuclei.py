"""Nuclei from an H&E image, tile by tile: haematoxylin by colour deconvolution, then a seeded watershed.

No TensorFlow, no weights to download: numpy + scipy only. The haematoxylin
channel is the Ruifrok & Johnston colour deconvolution (the stain matrix of
scikit-image's ``rgb2hed``); the foreground threshold is Otsu's on a strided
sample of the whole image (so a weakly stained slide gets a low threshold
rather than "0 objects found"), floored a few robust deviations above the
background; seeds are maxima of the distance to the background, and a
watershed (:func:`scipy.ndimage.watershed_ift`) splits touching nuclei.

The image is read one tile (plus a margin wider than a nucleus) at a time,
from anything that slices like a ``(H, W, 3)`` uint8 array: a numpy array or
a ``np.memmap`` / ``np.load(..., mmap_mode='r')`` of a full-resolution image,
so an image tens of thousands of pixels wide never sits in memory whole. A
nucleus belongs to the tile whose core holds its seed; what is kept per
nucleus is its centroid and area, and, for query points (the centres of
2 um bins), which nucleus each point falls in. A label image is painted only
when the caller passes one (small images, tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

# rgb_from_hed of Ruifrok & Johnston (2001), as in scikit-image; rows: haematoxylin, eosin, DAB
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
_LOG_ADJUST = np.log(1e-6)


def haematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin optical density of an RGB uint8 image (``rgb2hed(rgb)[..., 0]``), float32."""
    x = np.maximum(np.asarray(rgb[..., :3], dtype=np.float32) / 255.0, 1e-6)
    od = np.log(x) / np.float32(_LOG_ADJUST)
    h = od @ HED_FROM_RGB[:, 0].astype(np.float32)
    out: np.ndarray = np.maximum(h, 0).astype(np.float32)
    return out


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-d sample."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or np.ptp(v) == 0:
        return float(v[0]) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


@dataclass
class NucleiParams:
    """Sizes in micrometres (converted with the image's micrometres per pixel)."""

    min_diameter_um: float = 3.0
    max_diameter_um: float = 18.0
    seed_radius_um: float = 2.0  # seeds closer than this merge (one nucleus)
    smooth_um: float = 0.4
    tile_px: int = 2048  # full-resolution pixels per tile side (before downsampling)
    work_um_per_px: float = (
        0.55  # tiles are block-averaged down to about this resolution (never up)
    )
    threshold: float | None = None  # haematoxylin OD; None: Otsu on a sample of the image
    min_contrast_mads: float = (
        4.0  # threshold at least this many robust deviations above the median
    )

    def validate(self) -> None:
        from core.errors import BadOption

        if not (0 < self.min_diameter_um < self.max_diameter_um):
            raise BadOption("nucleus diameters must satisfy 0 < min < max")
        if self.tile_px < 128:
            raise BadOption("tile_px must be at least 128")


@dataclass
class Nuclei:
    """Nuclei found: centroids (x, y image px), areas (px), and the nucleus of each query point (-1: none)."""

    centroid_xy: np.ndarray
    area_px: np.ndarray
    point_label: np.ndarray | None
    threshold: float
    microns_per_px: float
    n_tiles: int
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.area_px)


def _sample_threshold(image: Any, step: int, p: NucleiParams, f: int = 1) -> float:
    H, W = image.shape[:2]
    win = 256 // f * f
    vals = []
    for y in range(0, H, max(step, win)):
        for x in range(0, W, max(step, win)):
            rgb = np.asarray(image[y : y + win, x : x + win])
            hh, ww = rgb.shape[0] // f, rgb.shape[1] // f
            if hh == 0 or ww == 0:
                continue
            if f > 1:
                rgb = (
                    rgb[: hh * f, : ww * f, :3]
                    .reshape(hh, f, ww, f, 3)
                    .mean(axis=(1, 3))
                    .astype(np.uint8)
                )
            vals.append(haematoxylin(rgb).ravel())
    v = np.concatenate(vals) if vals else np.zeros(1, np.float32)
    t = otsu_threshold(v)
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * 1.4826 + 1e-3
    return max(t, med + p.min_contrast_mads * mad)


def _segment_tile(rgb: np.ndarray, thr: float, mpp: float, p: NucleiParams) -> np.ndarray:
    """Labels (int32, 0 = background) of one tile."""
    h = haematoxylin(rgb)
    sig = p.smooth_um / mpp
    if sig >= 0.3:
        h = ndi.gaussian_filter(h, sig)
    mask = h > thr
    mask = ndi.binary_opening(mask, structure=np.ones((3, 3), dtype=bool))
    mask = ndi.binary_fill_holes(mask)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    dsm = ndi.gaussian_filter(dist, 1.0)
    r_seed = max(1, round(p.seed_radius_um / mpp))
    r_min = 0.5 * p.min_diameter_um / mpp
    peaks = (dsm == ndi.maximum_filter(dsm, size=2 * r_seed + 1)) & (dist >= 0.5 * r_min) & mask
    markers, n_m = ndi.label(peaks, structure=np.ones((3, 3)))
    comp, n_c = ndi.label(mask)
    # seeds per component: one (or none) -> the component is the nucleus; several -> watershed of its box
    mk = markers > 0
    pairs = np.unique(comp[mk].astype(np.int64) * (n_m + 1) + markers[mk])
    n_seeds = np.bincount(pairs // (n_m + 1), minlength=n_c + 1)
    ws = comp.astype(np.int32)
    multi = np.flatnonzero(n_seeds > 1)
    if multi.size:
        ws[np.isin(comp, multi)] = 0
        boxes = ndi.find_objects(comp)
        next_lab = n_c + 1
        scale = 60000.0 / max(float(dsm.max()), 1e-6)
        for k in multi:
            sl = boxes[k - 1]
            if sl is None:
                continue
            inside = comp[sl] == k
            m_loc = np.where(inside, markers[sl], 0)
            ids, m_loc = np.unique(m_loc, return_inverse=True)
            m_loc = m_loc.reshape(inside.shape).astype(np.int32)  # 0 stays 0 when ids[0] == 0
            if ids[0] != 0:
                m_loc += 1
                ids = np.r_[0, ids]
            cost = np.where(inside, np.clip(60000.0 - dsm[sl] * scale, 0, 60000), 65535).astype(
                np.uint16
            )
            w = ndi.watershed_ift(cost, m_loc, structure=np.ones((3, 3), dtype=int))
            w = np.where(inside & (w > 0), w + (next_lab - 1), 0).astype(np.int32)
            next_lab += len(ids) - 1
            sub = ws[sl]
            sub[inside] = w[inside]
    n_m = int(ws.max())
    # drop fragments below the minimum size
    area = np.bincount(ws.ravel(), minlength=n_m + 1)
    min_area = np.pi * (0.5 * p.min_diameter_um / mpp) ** 2 * 0.5
    small = area < min_area
    small[0] = False
    if small.any():
        ws[small[ws]] = 0
    labels: np.ndarray = ws
    return labels


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    disk: np.ndarray = (x * x + y * y) <= r * r
    return disk


def segment_nuclei(
    image: np.ndarray,
    microns_per_px: float,
    points_xy: np.ndarray | None = None,
    params: NucleiParams | None = None,
    labels_out: np.ndarray | None = None,
) -> Nuclei:
    """Find nuclei in an H&E image, one tile at a time.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8, sliced one tile at a time (a ``np.memmap`` keeps memory bounded).
    microns_per_px
        Image resolution; nucleus sizes are set in micrometres.
    points_xy
        Optional ``(n, 2)`` query points (x, y image px): each gets the id of the nucleus it falls in.
    labels_out
        Optional ``(H, W)`` int32 array painted with nucleus ids + 1 (0 background); small images only.
    """
    p = params or NucleiParams()
    p.validate()
    H, W = image.shape[:2]
    mpp = float(microns_per_px)
    f = max(1, int(p.work_um_per_px / mpp))  # block size of the downsampling
    margin = (int(np.ceil(p.max_diameter_um / mpp)) + 4 + f - 1) // f * f
    core = max((p.tile_px - 2 * margin) // f * f, 64 * f)
    thr = (
        p.threshold
        if p.threshold is not None
        else _sample_threshold(image, max(H, W) // 24 or 1, p, f)
    )
    pts = None if points_xy is None else np.asarray(points_xy)
    point_label = None
    if pts is not None:
        point_label = np.full(len(pts), -1, dtype=np.int64)
        pix = np.floor(pts).astype(np.int32)
        # points sorted by tile row so that each tile finds its points by two searchsorted calls
        order = np.lexsort((pix[:, 0], pix[:, 1]))
        py_sorted = pix[order, 1]
    cents: list[np.ndarray] = []
    areas: list[np.ndarray] = []
    next_id = 0
    n_tiles = 0
    for y0 in range(0, H, core):
        for x0 in range(0, W, core):
            n_tiles += 1
            y1, x1 = min(y0 + core, H), min(x0 + core, W)
            ey0, ex0 = max(0, y0 - margin), max(0, x0 - margin)
            ey1, ex1 = min(H, y1 + margin), min(W, x1 + margin)
            # the tile, cropped to whole blocks and block-averaged (f x f full-res px per work px)
            ey1 = ey0 + (ey1 - ey0) // f * f
            ex1 = ex0 + (ex1 - ex0) // f * f
            if ey1 <= ey0 or ex1 <= ex0:
                continue
            rgb = np.asarray(image[ey0:ey1, ex0:ex1])
            if f > 1:
                hh, ww = (ey1 - ey0) // f, (ex1 - ex0) // f
                rgb = rgb[..., :3].reshape(hh, f, ww, f, 3).mean(axis=(1, 3)).astype(np.uint8)
            lab = _segment_tile(rgb, thr, mpp * f, p)
            del rgb
            n_lab = int(lab.max())
            if n_lab == 0:
                continue
            area = np.bincount(lab.ravel(), minlength=n_lab + 1)[1:] * (f * f)
            present = area > 0
            fg = np.flatnonzero(lab)
            lf = lab.ravel()[fg]
            w_ = lab.shape[1]
            with np.errstate(invalid="ignore", divide="ignore"):
                cy = np.bincount(lf, weights=fg // w_, minlength=n_lab + 1)[1:] / (area / (f * f))
                cx = np.bincount(lf, weights=fg % w_, minlength=n_lab + 1)[1:] / (area / (f * f))
            cy, cx = np.nan_to_num(cy, nan=-1e9), np.nan_to_num(cx, nan=-1e9)
            del fg, lf
            gy, gx = (cy + 0.5) * f - 0.5 + ey0, (cx + 0.5) * f - 0.5 + ex0
            own = present & (gy >= y0) & (gy < y1) & (gx >= x0) & (gx < x1)
            # a nucleus touching the tile's outer edge (not the image's) may be cut: its owner tile sees it whole
            gid = np.full(n_lab + 1, -1, dtype=np.int64)
            k = int(own.sum())
            gid[1:][own] = np.arange(next_id, next_id + k)
            next_id += k
            cents.append(np.stack([gx[own], gy[own]], 1))
            areas.append(area[own])
            g = gid[lab]
            if labels_out is not None:
                sub = labels_out[ey0:ey1, ex0:ex1]
                gf = np.repeat(np.repeat(g, f, 0), f, 1) if f > 1 else g
                put = (gf >= 0) & (sub == 0)
                sub[put] = (gf[put] + 1).astype(labels_out.dtype)
                del gf
            if pts is not None and point_label is not None:
                a, b = np.searchsorted(py_sorted, [ey0, ey1])
                sel = order[a:b]
                xs = pix[sel, 0]
                inx = (xs >= ex0) & (xs < ex1)
                sel = sel[inx]
                hit = g[(pix[sel, 1] - ey0) // f, (pix[sel, 0] - ex0) // f]
                upd = (hit >= 0) & (point_label[sel] < 0)
                point_label[sel[upd]] = hit[upd]
            del lab, g
    cxy = np.concatenate(cents) if cents else np.zeros((0, 2))
    ar = np.concatenate(areas) if areas else np.zeros(0, dtype=np.int64)
    notes = []
    if next_id == 0:
        notes.append(f"no nuclei found (haematoxylin threshold {thr:.3f})")
    return Nuclei(
        centroid_xy=cxy,
        area_px=ar,
        point_label=point_label,
        threshold=float(thr),
        microns_per_px=mpp,
        n_tiles=n_tiles,
        notes=notes,
    )


def match_labels(truth: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> tuple[float, float, int]:
    """(precision, recall, matches) of two label images (0 background) at an IoU threshold."""
    t = truth.ravel().astype(np.int64)
    q = pred.ravel().astype(np.int64)
    nt, nq = int(t.max()) + 1, int(q.max()) + 1
    both = (t > 0) & (q > 0)
    pair = t[both] * nq + q[both]
    u, inter = np.unique(pair, return_counts=True)
    ti, qi = u // nq, u % nq
    at = np.bincount(t, minlength=nt)
    aq = np.bincount(q, minlength=nq)
    j = inter / (at[ti] + aq[qi] - inter)
    m = int(np.sum(j > iou))  # IoU > 0.5 makes a match one-to-one
    n_true = int(np.count_nonzero(at[1:]))
    n_pred = int(np.count_nonzero(aq[1:]))
    return m / max(n_pred, 1), m / max(n_true, 1), m
