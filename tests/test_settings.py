"""The environment-driven settings: embedded defaults, deploy checks, SQLite under two writers."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DEBUG",
    "SECRET_KEY",
    "SECURE_SSL",
    "OPENAI_API_KEY",
    "LLM_BASE_URL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
)


def run_python(code: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    clean |= {"MEDSYNTH_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "medsynth_site.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_with_no_environment_the_app_runs_embedded(tmp_path):
    result = run_python(
        """
        import django; django.setup()
        from django.conf import settings
        db = settings.DATABASES["default"]
        print(db["ENGINE"], db["NAME"], db["OPTIONS"]["transaction_mode"], settings.CELERY_BROKER_URL)
        print(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        print(len(settings.SECRET_KEY))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine_line, broker_dir, key_length = result.stdout.splitlines()
    assert engine_line == f"django.db.backends.sqlite3 {tmp_path}/medsynth.sqlite3 IMMEDIATE filesystem://"
    assert broker_dir.startswith(str(tmp_path))
    assert int(key_length) >= 50
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0, "the generated key is readable by its owner only"


def test_the_generated_secret_key_is_kept_across_starts(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    assert run_python(code, tmp_path).stdout == run_python(code, tmp_path).stdout


def test_environment_variables_select_postgresql_and_redis(tmp_path):
    result = run_python(
        """
        import django; django.setup()
        from django.conf import settings
        database = settings.DATABASES["default"]
        print(database["ENGINE"], database["NAME"], settings.CELERY_BROKER_URL)
        """,
        tmp_path,
        DATABASE_URL="postgresql://medsynth@db.internal:5432/medsynth",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "medsynth", "redis://cache.internal:6379/0"]


def test_check_deploy_reports_nothing_with_debug_off(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**{k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}, "MEDSYNTH_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


WRITER = """
import sys, time, django
django.setup()
from django.db import connection, transaction
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both writers start together
for _ in range(300):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(n), 0) FROM counter")
            (last,) = cursor.fetchone()
            cursor.execute("INSERT INTO counter (n, writer) VALUES (%s, %s)", [last + 1, sys.argv[1]])
"""


@pytest.mark.slow
def test_two_processes_writing_sqlite_at_once_never_hit_database_is_locked(tmp_path):
    """Each transaction reads then writes: the pattern that fails with a deferred BEGIN."""
    setup = run_python(
        """
        import django; django.setup()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE counter (n INTEGER UNIQUE, writer TEXT)")
            cursor.execute("PRAGMA journal_mode")
            print(cursor.fetchone()[0])
        """,
        tmp_path,
    )
    assert setup.stdout.strip() == "wal", setup.stderr
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env |= {"MEDSYNTH_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "medsynth_site.settings"}
    start_at = str(time.time() + 4)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, start_at], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        for name in ("web", "worker")
    ]
    errors = [writer.communicate(timeout=300)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    count = run_python(
        """
        import django; django.setup()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), MAX(n), COUNT(DISTINCT writer) FROM counter")
            print(*cursor.fetchone())
        """,
        tmp_path,
    )
    assert count.stdout.split() == ["600", "600", "2"]
