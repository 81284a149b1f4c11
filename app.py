"""Start the workstation: `python app.py` (127.0.0.1:7860, shipped model, bundled sample cases)."""

from __future__ import annotations

import logging

from moe_app.config import load_config
from moe_app.ui import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(load_config())
