"""The dashboards in a real browser: from the batch page to its dashboards, the funnel's
chart is drawn on its canvas by the vendored Chart.js (the panel arrives by htmx), and the
figure's CSV downloads with the rows of its table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.factories import AdminFactory
from tests.review.dashboard_seed import dashboard_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# True once Chart.js has drawn on the canvas: a chart object is bound to it and some pixel is painted.
CANVAS_DRAWN = """(selector) => {
  const canvas = document.querySelector(selector);
  if (!canvas || !window.Chart || !Chart.getChart(canvas)) return false;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) return true; }
  return false;
}"""


def test_a_chart_renders_and_its_csv_downloads(open_session, live_server):
    seeded = dashboard_dataset()
    page = open_session(AdminFactory())
    page.goto(f"{live_server.url}/generation/batches/{seeded.batch_x.pk}/")
    page.get_by_role("link", name="all dashboards for this batch").click()
    page.wait_for_url(f"**/review/dashboards/?batch={seeded.batch_x.pk}")

    # The funnel panel loads by itself (htmx) and its chart is drawn.
    page.locator("#figure-funnel canvas").wait_for()
    page.wait_for_function(CANVAS_DRAWN, arg="#figure-funnel canvas")
    labels = page.evaluate("Chart.getChart(document.querySelector('#figure-funnel canvas')).data.labels")
    assert labels[0] == "Generated (pair handed to review)"
    data = page.evaluate("Chart.getChart(document.querySelector('#figure-funnel canvas')).data.datasets[0].data")
    assert data == [3, 1, 1, 1, 1, 0]  # batch X: c1, c2, c3 generated; c3 flagged and rejected

    with page.expect_download() as download_info:
        page.locator("#figure-funnel").get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "funnel.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["Step", "Cases", "Share of generated"]
    assert [row[:2] for row in rows[1:3]] == [
        ["Generated (pair handed to review)", "3"],
        ["Flagged by the automatic checks", "1"],
    ]
