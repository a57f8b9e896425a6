#!/usr/bin/env bash
# The system packages the test suite uses for real, installed only where missing (Debian/Ubuntu, apt):
# ffmpeg cuts rescan's test archive, PostgreSQL serves rescan's --db tests, GStreamer's RTSP server
# (under the system python3-gi) streams to `watch`, Mosquitto is the MQTT broker the sink tests use, and
# Chromium with its driver runs the review desk's browser tests. The README's test command and .ci/run both call this.
set -euo pipefail

gst_ready() {
  /usr/bin/python3 - <<'PY' 2>/dev/null
import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
assert all(Gst.ElementFactory.find(e) for e in ("multifilesrc", "jpegdec", "videoconvert", "x264enc", "rtph264pay"))
PY
}

if gst_ready && command -v ffmpeg >/dev/null && command -v mosquitto >/dev/null && command -v chromedriver >/dev/null \
    && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "error: missing ffmpeg, PostgreSQL, Mosquitto, Chromium or GStreamer's RTSP server, and no apt-get to install them" \
       "— fix: install them with your system's package manager (see scripts/install-system-deps.sh)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi  # never wait for a password (CI)
echo "installing system packages: ffmpeg, PostgreSQL, GStreamer RTSP server, Mosquitto, Chromium (apt)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
  ffmpeg postgresql mosquitto chromium chromium-driver python3-gi gir1.2-gst-rtsp-server-1.0 \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly >/dev/null
gst_ready || { echo "error: GStreamer's RTSP server is not usable after the install — fix: check python3-gi and gir1.2-gst-rtsp-server-1.0" >&2; exit 1; }
