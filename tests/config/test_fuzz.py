"""Hostile edits of every kind of input file: `streetwatch config check` answers each with `ok` or one error line
and exit 2, never a traceback. Mutations of the bundled camera, watch and patrol files, the fence GeoJSON and
GPX/NMEA/CSV tracks: numbers replaced by NaN, infinities, huge or negative values, strings or nothing; lines
dropped, doubled or cut; bytes flipped. Seeded (derandomised), so every run tries the same 2,000 files."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.cli import main
from testkit import REPO


def nmea(body: str) -> str:
    """A sentence with its checksum (the XOR of the characters between `$` and `*`)."""
    check = 0
    for ch in body:
        check ^= ord(ch)
    return f"${body}*{check:02X}\n"


TRACKS = {
    "track.csv": "time,lat,lon,heading_deg,speed_mps\n2026-12-01T08:00:00+08:00,31.2300,121.4700,90,5\n"
                 "2026-12-01T08:00:01+08:00,31.2300,121.4701,90,5\n2026-12-01T08:00:02+08:00,31.2300,121.4702,,\n",
    "track.gpx": '<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
                 '<trk><trkseg><trkpt lat="31.2300" lon="121.4700"><time>2026-12-01T00:00:00Z</time></trkpt>\n'
                 '<trkpt lat="31.2300" lon="121.4701"><time>2026-12-01T00:00:01Z</time></trkpt>\n'
                 '</trkseg></trk></gpx>\n',
    "track.nmea": "".join(nmea(f"GPRMC,00000{s},A,3113.800,N,12128.{200 + 6 * s},E,9.7,90.0,011226,,,A")
                          for s in range(3)),
}
SOURCES = {name: (REPO / "zones" / name).read_text(encoding="utf-8") for name in
           ("example.yaml", "watch-example.yaml", "patrol-example.yaml", "patrol-fences-example.geojson")} | TRACKS
HOSTILE = [".nan", ".inf", "-.inf", "nan", "inf", "NaN", "1e309", "-1e309", "1e400", "-0", "0", "-1", "99999999999",
           "1e-320", '"x"', "", "[]", "{}", "null", "~", "[1, 2]", "true", "\u00e9", "'", "\"", "&a", "*a",
           "!!binary x"]
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def mutate(text: str, kind: int, at: int, token: str) -> str:
    lines = text.splitlines(keepends=True)
    numbers = list(NUMBER.finditer(text))
    if kind == 0 and numbers:  # a number becomes something hostile
        m = numbers[at % len(numbers)]
        return text[:m.start()] + token + text[m.end():]
    if kind == 1 and lines:  # a line goes
        del lines[at % len(lines)]
    elif kind == 2 and lines:  # a line twice
        i = at % len(lines)
        lines.insert(i, lines[i])
    elif kind == 3:  # cut short
        return text[: at % max(1, len(text))]
    elif kind == 4 and text:  # one character replaced
        i = at % len(text)
        return text[:i] + (token[:1] or "\x00") + text[i + 1:]
    return "".join(lines)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(SOURCES)), kind=st.integers(0, 4), at=st.integers(0, 10_000),
       token=st.sampled_from(HOSTILE))
def test_a_mutated_file_is_ok_or_one_error_line(tmp_path_factory, source: str, kind: int, at: int, token: str) -> None:
    folder = tmp_path_factory.getbasetemp() / "fuzz"
    if not folder.exists():
        folder.mkdir()
        (folder / "patrol-fences-example.geojson").write_text(SOURCES["patrol-fences-example.geojson"])  # patrol's
    path = folder / (f"mutated-{source}" if source != "patrol-fences-example.geojson" else "fences.geojson")
    path.write_text(mutate(SOURCES[source], kind, at, token), encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["config", "check", str(path)])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert (code, lines) == (0, []) or (code == 2 and len(lines) == 1 and lines[0].startswith("error: ")), \
        (source, kind, at, token, code, err.getvalue())
    assert "Traceback" not in err.getvalue()


def test_the_unmutated_files_are_ok(tmp_path: Path) -> None:
    for name, text in SOURCES.items():
        (tmp_path / name).write_text(text)
    for name in SOURCES:
        assert main(["config", "check", str(tmp_path / name)]) == 0, name
