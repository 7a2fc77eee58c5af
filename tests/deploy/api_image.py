"""What the API image lacks, as a ``sitecustomize`` that refuses those imports in a subprocess."""

from __future__ import annotations

from pathlib import Path

# what the API image does not have (numpy comes with h5py, which the upload sniffer uses;
# Pillow with fpdf2, which renders the signed report.pdf)
NOT_IN_API_IMAGE = (
    "scipy",
    "pandas",
    "anndata",
    "matplotlib",
    "faiss",
    "igraph",
    "pyarrow",
    "threadpoolctl",
    "torch",
    "transformers",
    "sklearn",
)

BLOCKER = f"""
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {NOT_IN_API_IMAGE!r}:
            raise ImportError(f'{{name}} is not in the API image')
        return None
sys.meta_path.insert(0, _Block())
"""


def blocker_dir(tmp: Path) -> Path:
    """A folder with a sitecustomize.py that refuses the packages the API image lacks;
    put it first on PYTHONPATH of a subprocess."""
    d = tmp / "api-image-site"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(BLOCKER)
    return d
