"""What a tenant may read of a job's error: a code and one sentence.

Every error stored on a job (``error_detail``, shown by the API and sent in webhooks) goes
through :func:`public_detail`: no traceback, no server path (a temporary folder becomes the
path inside the sample, any other absolute path its file name), one line, bounded length.
The full text is logged on the server by the caller.
"""

from __future__ import annotations

import re

MAX_DETAIL = 500

_TRACEBACK = re.compile(r"Traceback \(most recent call last\)", re.I)
# an absolute POSIX path: starts at a word boundary that is not part of a word, a number or
# a URL ("3/4", "bytes/s", "outs/spatial" and "https://host/x" are left alone)
_POSIX_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"`,;:()\[\]{}<>|]+)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"`,;()\[\]{}<>|]*")
# a folder made by tempfile (mkdtemp, TemporaryDirectory) or one of ours under it
_TEMP_PART = re.compile(r"^(?:mgs-[\w.-]+|tmp[\w.-]*|pytest-[\w.-]+|\w+\.d)$")
_SYSTEM_ROOTS = {
    "tmp",
    "var",
    "proc",
    "home",
    "root",
    "usr",
    "etc",
    "opt",
    "srv",
    "work",
    "mnt",
    "run",
    "dev",
    "sys",
    "app",
}


def _short_path(path: str) -> str:
    """The part of a server path a tenant may see: the path inside the sample (after the last
    temporary folder), else the file name."""
    trail = ""
    while path and path[-1] in ".":
        trail, path = path[-1] + trail, path[:-1]
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "the sample" + trail
    cut = None
    for i, p in enumerate(parts):
        if _TEMP_PART.match(p) and (i > 0 or p not in _SYSTEM_ROOTS):
            cut = i
    if cut is not None:
        rest = parts[cut + 1 :]
        return ("/".join(rest) if rest else "the sample") + trail
    return parts[-1] + trail


def public_detail(code: str, detail: str | None) -> str:
    """``detail`` as a tenant may read it (see the module docstring)."""
    text = detail or ""
    m = _TRACEBACK.search(text)
    if m:
        text = text[: m.start()]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith('File "')]
    text = lines[0] if lines else ""
    text = _WINDOWS_PATH.sub(
        lambda m: m.group(0).rstrip("\\").rsplit("\\", 1)[-1] or "the sample", text
    )
    text = _POSIX_PATH.sub(lambda m: _short_path(m.group(0)), text)
    text = text.strip().rstrip(":;,").strip()
    if len(text) > MAX_DETAIL:
        cut = text[: MAX_DETAIL - 1].rsplit(" ", 1)[0]
        text = cut.rstrip(":;, ") + "…"
    return text or f"the job failed ({code})"
