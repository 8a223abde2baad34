"""An htmx request whose session has expired leaves the page for the login form, and the
login form returns to the page, not to the partial the request asked for."""

from urllib.parse import quote

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_htmx_request_without_a_session_navigates_to_the_login_page_and_back(client):
    page = "/review/case/7/?queue=pair"
    response = client.post(
        reverse("review:note-section-edit", args=[7, "plan"]),
        {"text": "Half a paragraph."},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )
    # Not a redirect the browser would follow inside the request (the login page would be
    # swapped into the panel), and not 2xx (the page would take it for a save and drop its copy).
    assert response.status_code == 401
    assert response["HX-Redirect"] == f"{reverse('login')}?next={quote(page, safe='/')}"
    assert "Location" not in response


def test_a_page_of_another_site_is_not_where_the_login_returns(client):
    response = client.get(
        reverse("review:item", args=[7]), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://evil.example/review/"
    )
    assert response.status_code == 401
    assert response["HX-Redirect"] == f"{reverse('login')}?next={quote(reverse('home'), safe='/')}"


def test_a_plain_request_is_redirected_as_before(client):
    response = client.get("/review/case/7/?queue=pair")
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={quote('/review/case/7/?queue=pair', safe='/')}"
