"""``medgemma-spatial``, the command line: the top of the dependency graph.

``cli.main`` holds the analysis commands (``analyze``, ``demo``, ``eval``); ``cli.service``
the service commands (``serve``, ``worker``, ``relay``, ``db``, ``keys``), registered when the
service extra is installed. ``cli`` may import ``core``, ``api`` and ``worker``; ``core``
imports none of them (tests/unit/test_layering.py checks it).
"""

from cli.main import build_parser, main

__all__ = ["build_parser", "main"]
