"""Multimodal Mixture-of-Experts diagnostic workstation.

The package reads like the data flow of a case:
intake -> deid -> model -> runtime -> explain -> audit -> ui, joined by pipeline.
"""

from __future__ import annotations

__version__ = "0.1.0"
