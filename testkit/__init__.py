"""What tests and scripts share: composed test media, an RTSP server, PostgreSQL, a worker process."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the checkout
