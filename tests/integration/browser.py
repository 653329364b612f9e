"""Render a page in Debian's headless chromium: DOM measurements, a screenshot, and PNG pixel counts.

``scripts/install-chromium`` installs the browser (``make test`` runs it through ``scripts/test``).
The page under test has no script; :func:`measure_page` renders a copy with a small script
appended that writes the charts' on-screen sizes into the DOM, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_MEASURE = """
<script>
const out = {charts: [], end_labels: document.querySelectorAll('text.end-label').length,
             recent_rows: document.querySelectorAll('#recent tr').length - 1};
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  const widths = sel => [...svg.querySelectorAll(sel)].map(e => e.getBoundingClientRect().width);
  out.charts.push({id: svg.id, width: box.width, height: box.height,
                   series: svg.querySelectorAll('polyline.series').length, series_widths: widths('polyline.series'),
                   bars: svg.querySelectorAll('rect.bar').length, bar_widths: widths('rect.bar')});
}
const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is not installed: run scripts/install-chromium (scripts/test does it before the integration tests)"
    )


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def measure_page(page: Path, work: Path) -> dict[str, Any]:
    """Sizes of the rendered charts (see ``_MEASURE``) of ``page``, laid out in a 1200 px window."""
    work.mkdir(parents=True, exist_ok=True)
    probe = work / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    done = _run(["--window-size=1200,1600", "--dump-dom", probe.as_uri()], work / "profile")
    match = re.search(r"<pre id=\"measured\">(.*?)</pre>", done.stdout, re.DOTALL)
    assert match, done.stdout[-2000:] + done.stderr[-2000:]
    text = match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return dict(json.loads(text))


def screenshot(page: Path, png: Path, profile: Path) -> Path:
    """A 1000x1300 screenshot of ``page`` (the cards and both charts)."""
    _run(["--window-size=1000,1300", "--hide-scrollbars", f"--screenshot={png}", page.as_uri()], profile)
    assert png.is_file() and png.stat().st_size > 0
    return png


def count_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 10) -> int:
    """Pixels of ``png`` within ``tolerance`` of ``rgb`` (8-bit RGB/RGBA, non-interlaced PNG)."""
    width, height, channels, rows = _decode(png.read_bytes())
    count = 0
    for row in rows:
        for x in range(0, width * channels, channels):
            if (
                abs(row[x] - rgb[0]) <= tolerance
                and abs(row[x + 1] - rgb[1]) <= tolerance
                and abs(row[x + 2] - rgb[2]) <= tolerance
            ):
                count += 1
    assert len(rows) == height
    return count


def _decode(data: bytes) -> tuple[int, int, int, list[bytearray]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, row, prev, channels)
        rows.append(row)
        prev = row
    return width, height, channels, rows


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> None:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            corner = prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            row[i] = (row[i] + pred) & 0xFF
