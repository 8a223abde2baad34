"""Guideline markdown is shown to every reviewer: it may link out, but nothing in it loads
from another site (a remote image tells its server who read the guideline, and when)."""

from __future__ import annotations

import pytest

from review.templatetags.review_tags import markdown_sanitised


@pytest.mark.parametrize(
    "markdown",
    [
        "![pixel](https://tracker.example/p.gif)",
        "![pixel](http://tracker.example/p.gif)",
        '<img src="//tracker.example/p.gif">',
        '<img src="/\\tracker.example/p.gif">',
        '<img src=" https://tracker.example/p.gif">',
        '<iframe src="https://tracker.example/"></iframe>',
        '<object data="https://tracker.example/x.swf"></object>',
        '<embed src="https://tracker.example/x.swf">',
        '<video src="https://tracker.example/v.mp4"></video>',
        '<audio><source src="https://tracker.example/a.mp3"></audio>',
        '<link rel="stylesheet" href="https://tracker.example/s.css">',
        '<p style="background: url(https://tracker.example/p.gif)">styled</p>',
    ],
)
def test_nothing_is_loaded_from_another_site(markdown):
    html = markdown_sanitised(f"Check doses.\n\n{markdown}")
    assert "tracker.example" not in html
    assert "<p>Check doses.</p>" in html


def test_an_image_from_this_site_is_kept():
    assert '<img alt="chart" src="/static/img/chart.png">' in markdown_sanitised("![chart](/static/img/chart.png)")


def test_links_open_without_opener_or_referrer():
    html = markdown_sanitised("See [the protocol](https://guidelines.example.org/doses).")
    assert '<a href="https://guidelines.example.org/doses" rel="noopener noreferrer">the protocol</a>' in html
