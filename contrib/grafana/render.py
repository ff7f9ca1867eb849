"""Draw the dashboard's panels from a real Prometheus, without Grafana.

Why this exists: Grafana is not installable on the machine the suite runs on, yet the README
should show what the dashboard shows. This reads ``flask-smscode.json``, runs each panel's
PromQL through Prometheus' ``/api/v1/query_range``, draws every series as an SVG line in a
grid laid out like the dashboard's ``gridPos``, and (optionally) has headless Chromium take
a PNG of the page. It is a rendering of the panels' data, not Grafana itself: no Grafana
styling, units shown only as a suffix. Standard library only (Chromium does the pixels), so
nothing is added to the package's dependencies.

    python contrib/grafana/render.py http://127.0.0.1:9090 out.html [out.png]

``tests/test_metrics_prometheus.py`` renders it against the Prometheus it starts;
``SMSCODE_DASHBOARD_PNG=docs/dashboard.png`` makes it write the README's screenshot.
"""

from __future__ import annotations

import html
import json
import math
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).with_name("flask-smscode.json")
COLUMN = 62  # px per grid column (24 columns)
ROW = 34  # px per grid row
COLOURS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
CHROMIUM = "/usr/bin/chromium"


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> Any:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    url = f"{prometheus}/api/v1/query_range?{params}"  # the operator's Prometheus, http(s)
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
        return json.loads(r.read())["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def fmt(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.3g} s"
    if unit == "reqps":
        return f"{value:.2g}/s"
    return f"{value:.3g}"


def panel_svg(panel: dict[str, Any], series: list[tuple[str, list[tuple[float, float]]]]) -> str:
    width = panel["gridPos"]["w"] * COLUMN - 12
    height = panel["gridPos"]["h"] * ROW - 12
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    plot_top, plot_left, plot_h = 28, 56, height - 28 - 22 - 18 * ((len(series) + 2) // 3)
    plot_w = width - plot_left - 10
    points = [(t, v) for _, values in series for t, v in values]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" rx="4" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="10" y="19" class="t">{html.escape(panel["title"])}</text>',
    ]
    if not points:
        parts.append(f'<text x="{width // 2 - 20}" y="{height // 2}" class="a">No data</text>')
        return "".join(parts) + "</svg>"
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    v1 = max(max(v for _, v in points), 1e-9)
    v1 = 1.0 if unit == "percentunit" and v1 <= 1 else v1 * 1.1
    for i in range(5):
        y = plot_top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{plot_left}" x2="{plot_left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#2c3235"/><text x="{plot_left - 6}" y="{y + 4:.1f}" class="a" '
            f'text-anchor="end">{fmt(v1 * i / 4, unit)}</text>'
        )
    span = max(t1 - t0, 1.0)
    for index, (name, values) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(
            f"{plot_left + plot_w * (t - t0) / span:.1f},{plot_top + plot_h - plot_h * v / v1:.1f}"
            for t, v in values
        )
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        lx = 10 + (index % 3) * (width // 3)
        ly = plot_top + plot_h + 22 + 18 * (index // 3)
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{ly - 4}" class="a">{html.escape(name[:40])}</text>'
        )
    return "".join(parts) + "</svg>"


def render(prometheus: str, start: float, end: float, step: float = 2.0) -> tuple[str, int]:
    """The page (HTML) and its height in pixels."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    boxes, bottom = [], 0
    for panel in dashboard["panels"]:
        series = []
        for target in panel["targets"]:
            for item in query_range(prometheus, target["expr"], start, end, step):
                values = [
                    (float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v))
                ]
                if values:
                    series.append((legend(target["legendFormat"], item["metric"]), values))
        grid = panel["gridPos"]
        bottom = max(bottom, (grid["y"] + grid["h"]) * ROW)
        boxes.append(
            f'<div style="position:absolute;left:{grid["x"] * COLUMN + 6}px;'
            f'top:{grid["y"] * ROW + 46}px">{panel_svg(panel, series)}</div>'
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><style>'
        "body{margin:0;background:#111217;font:12px sans-serif;color:#ccccdc}"
        ".t{fill:#ccccdc;font:600 13px sans-serif}.a{fill:#8e8e8e;font:11px sans-serif}"
        "h1{font:600 16px sans-serif;margin:0;padding:14px 12px}</style></head><body>"
        f"<h1>{html.escape(dashboard['title'])} — the dashboard's panels drawn from "
        f"Prometheus query_range ({stamp}; a rendering, not Grafana)</h1>"
        f"{''.join(boxes)}</body></html>"
    )
    return page, bottom + 60


def screenshot(page: Path, png: Path, height: int) -> None:
    """Headless Chromium's screenshot of ``page`` (24 columns wide)."""
    subprocess.run(  # noqa: S603 (a fixed binary; the arguments are paths we chose)
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={24 * COLUMN + 12},{height}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def main(argv: list[str]) -> None:
    prometheus, out = argv[0], Path(argv[1])
    end = time.time()
    page, height = render(prometheus, end - 600, end)
    out.write_text(page, encoding="utf-8")
    if len(argv) > 2:
        screenshot(out, Path(argv[2]), height)


if __name__ == "__main__":
    main(sys.argv[1:])
