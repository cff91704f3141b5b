"""Triage library: normalise, segment and embed Chinese complaints once, then grade them.

No HTTP here: ``api/`` is a thin layer over this package.
"""
from __future__ import annotations

__version__ = "0.1.0"
