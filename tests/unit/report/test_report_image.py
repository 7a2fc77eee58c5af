"""H&E preparation: dtypes, channels, cropping to the tissue, letterboxing, tiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.report.image import letterbox, prepare_images, tissue_box, to_rgb_uint8
from core.results import read_analysis
from tests.fixtures.report_outputs import write_output_dir


def test_float_unit_range_and_uint8_agree() -> None:
    u8 = np.array([[[0, 128, 255]]], dtype=np.uint8)
    f = u8.astype(np.float32) / 255.0
    assert to_rgb_uint8(f).tolist() == u8.tolist()
    assert to_rgb_uint8(u8).tolist() == u8.tolist()
    assert to_rgb_uint8(u8.astype(np.float64)).tolist() == u8.tolist()  # float 0..255


def test_rgba_transparent_becomes_white_and_grey_becomes_rgb() -> None:
    rgba = np.array([[[10, 20, 30, 0], [10, 20, 30, 255]]], dtype=np.uint8)
    out = to_rgb_uint8(rgba)
    assert out.shape == (1, 2, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [10, 20, 30]
    grey = np.array([[0.0, 0.5]], dtype=np.float32)
    assert to_rgb_uint8(grey).tolist() == [[[0, 0, 0], [128, 128, 128]]]
    assert to_rgb_uint8(np.array([[65535]], dtype=np.uint16)).tolist() == [[[255, 255, 255]]]


def test_letterbox_keeps_aspect_on_white() -> None:
    img = Image.new("RGB", (400, 100), (0, 0, 0))
    out = np.asarray(letterbox(img, 896))
    assert out.shape == (896, 896, 3)
    dark = np.argwhere(out.sum(2) < 50)
    h = dark[:, 0].max() - dark[:, 0].min() + 1
    w = dark[:, 1].max() - dark[:, 1].min() + 1
    assert w == 896 and abs(w / h - 4.0) < 0.05
    assert out[0, 0].tolist() == [255, 255, 255]


def test_tissue_box_pads_and_clips() -> None:
    xy = np.array([[10.0, 20.0], [50.0, 80.0]])
    x0, y0, x1, y1 = tissue_box(xy, 5.0, (100, 56))
    assert x0 <= 5 and y0 <= 15 and x1 == 56 and y1 >= 85
    assert tissue_box(np.zeros((0, 2)), 1.0, (10, 20)) == (0, 0, 20, 10)


@pytest.mark.parametrize("kind", ["uint8", "rgba", "grey"])
def test_prepare_crops_to_spots(tmp_path: Path, kind: str) -> None:
    d = write_output_dir(tmp_path, image=kind)
    prepared = prepare_images(d, read_analysis(d).image, tiles=2)
    assert len(prepared.images) == 3
    assert all(im.size == (896, 896) and im.mode == "RGB" for im in prepared.images)
    h, w = prepared.info["source_shape"]
    x0, y0, x1, y1 = prepared.info["crop_box"]
    assert 0 < x0 < x1 < w and 0 < y0 < y1 < h  # the blank margin is cut away
    assert len(prepared.info["tiles"]) == 2


def test_no_image_means_text_only(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path, image=None)
    prepared = prepare_images(d, read_analysis(d).image)
    assert not prepared.available and prepared.info["available"] is False


def test_space_ranger_hires_fallback(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path, image=None)
    (d / "spatial").mkdir()
    Image.new("RGBA", (700, 600), (200, 100, 150, 255)).save(
        d / "spatial" / "tissue_hires_image.png"
    )
    (d / "spatial" / "scalefactors_json.json").write_text(
        json.dumps({"tissue_hires_scalef": 0.08, "spot_diameter_fullres": 180.0})
    )
    prepared = prepare_images(d, None)
    assert prepared.available and prepared.info["scalef"] == 0.08
