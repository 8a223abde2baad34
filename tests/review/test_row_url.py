"""{% row_url %}: the URLs {% url %} builds, for the rows of a long list."""

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse

from review.templatetags.review_tags import row_url


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("review:item", (1,)),
        ("review:item", (2_000_000_000,)),
        ("review:item", (123456,)),
        ("review:turn-edit", (7, 0, "edit")),
        ("review:turn-edit", (7, 12, "insert")),
        ("review:turn-move", (70, 3, "up")),
        ("review:turn-move", (70, 10, "delete")),
        ("review:note-section-edit", (5, "subjective")),
    ],
)
def test_it_builds_the_url_reverse_builds(name, args):
    assert row_url(name, *args) == reverse(name, args=args)


def test_it_refuses_what_reverse_refuses():
    with pytest.raises(NoReverseMatch):
        row_url("review:item", -1)
    with pytest.raises(NoReverseMatch):
        row_url("review:turn-move", 1, 2, "not a slug")


def test_in_a_template_it_is_the_url_tag():
    template = (
        "{% load review_tags %}{% for i in rows %}{% TAG 'review:turn-move' 9 i 'down' as u %}{{ u }};{% endfor %}"
    )
    context = {"rows": range(12)}
    rendered = Template(template.replace("TAG", "row_url")).render(Context(context))
    assert rendered == Template(template.replace("{% load review_tags %}", "").replace("TAG", "url")).render(
        Context(context)
    )
