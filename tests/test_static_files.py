"""collectstatic with the production storage (hashed, compressed names): `make run` and the
production start run it first, and it refuses a file that references one that is missing
(a vendored library's source map, say)."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def test_collectstatic_with_the_production_storage_succeeds(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    out = StringIO()

    call_command("collectstatic", interactive=False, verbosity=1, stdout=out)

    assert (tmp_path / "staticfiles.json").exists(), out.getvalue()
    assert list(tmp_path.glob("vendor/chartjs/chart.umd.min.*.js")), "the dashboards' chart library was not collected"
