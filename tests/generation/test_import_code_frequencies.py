import io
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from generation.models import IcdCode
from tests.factories import IcdCodeFactory


@pytest.fixture
def codes(db):
    return {code: IcdCodeFactory(code=code) for code in ["E11.9", "I10", "M25.562", "J45.909"]}


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "frequencies.csv"
    path.write_bytes(text.encode(encoding))
    return path


def frequencies() -> dict[str, int | None]:
    return dict(IcdCode.objects.values_list("code", "frequency"))


def test_it_matches_dotted_and_undotted_codes_and_reports_the_rest(codes, tmp_path, capsys):
    path = write(
        tmp_path,
        'code,count,description\nE119,120,"Type 2 diabetes"\n "I10" , 300\nm25.562,7,knee pain\n'
        "ZZZ99,5,not a code\n250.00,9,icd9 diabetes\n4019,4,\nE11.9,30,duplicate adds up\n",
    )
    call_command("import_code_frequencies", str(path))
    out = capsys.readouterr().out

    assert frequencies() == {"E11.9": 150, "I10": 300, "M25.562": 7, "J45.909": None}
    assert "7 rows read: 4 matched" in out
    assert "1 unknown codes: ZZZ99" in out
    assert "2 codes that look like ICD-9 (not imported): 250.00, 4019" in out


def test_a_new_import_replaces_the_previous_frequencies(codes, tmp_path):
    IcdCode.objects.filter(code="J45.909").update(frequency=99)
    call_command("import_code_frequencies", str(write(tmp_path, "code,count\nI10,5\n")))
    assert frequencies()["J45.909"] is None
    assert frequencies()["I10"] == 5


def test_it_takes_another_delimiter(codes, tmp_path):
    call_command("import_code_frequencies", str(write(tmp_path, "code;count\nI10;11\n")), delimiter=";")
    assert frequencies()["I10"] == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("I10,5\n", "line 1: expected the header code,count"),
        ("code,count\nI10,5\nE119,many\n", "line 3: the count 'many' is not a whole number"),
        ("code,count\nI10,5\nE119,1,x,extra\n", "line 3: expected 2 or 3 columns, found 4"),
        ("code,count\n,5\n", "line 2: the code is empty"),
        ("code;count\nI10;5\n", "line 1: expected the header code,count"),
    ],
)
def test_a_malformed_file_changes_nothing(codes, tmp_path, text, message):
    IcdCode.objects.filter(code="I10").update(frequency=42)
    with pytest.raises(CommandError, match=message) as error:
        call_command("import_code_frequencies", str(write(tmp_path, text)))
    assert "Nothing was imported" in str(error.value)
    assert frequencies() == {"E11.9": None, "I10": 42, "M25.562": None, "J45.909": None}


def test_a_file_that_is_not_utf8_is_refused_with_its_line(codes, tmp_path):
    path = write(tmp_path, "code,count\nI10,5\nE119,3,Diab\xe8te\n", encoding="latin-1")
    with pytest.raises(CommandError, match="line 3: the file is not UTF-8"):
        call_command("import_code_frequencies", str(path))
    assert frequencies()["I10"] is None


def test_a_missing_file_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_code_frequencies", str(tmp_path / "nope.csv"))


# --- The same file through both entry points: the command and the admin page ---------

MIXED_FILE = "code,count\nE119,120\nI10,300\nZZZ99,5\n250.00,9\nE11.9,30\n"


def import_with_the_command(path: Path, client) -> list[str]:
    out = io.StringIO()
    call_command("import_code_frequencies", str(path), stdout=out)
    return out.getvalue().splitlines()


def import_in_the_admin(path: Path, client) -> list[str]:
    upload = SimpleUploadedFile("frequencies.csv", path.read_bytes(), content_type="text/csv")
    response = client.post(reverse("admin:generation_icdcode_import_frequencies"), {"file": upload, "delimiter": ","})
    assert response.status_code == 302
    return [message.message for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("entry_point", [import_with_the_command, import_in_the_admin])
def test_both_entry_points_sum_duplicates_clear_old_values_and_report_unknown_codes(
    codes, tmp_path, admin_member_client, entry_point
):
    IcdCode.objects.filter(code="J45.909").update(frequency=99)

    report = entry_point(write(tmp_path, MIXED_FILE), admin_member_client)

    assert frequencies() == {"E11.9": 150, "I10": 300, "M25.562": None, "J45.909": None}
    assert report == [
        "5 rows read: 3 matched ICD-10-CM codes.",
        "1 unknown codes: ZZZ99",
        "1 codes that look like ICD-9 (not imported): 250.00",
    ]


def test_the_admin_refuses_a_malformed_file_and_changes_nothing(codes, tmp_path, admin_member_client):
    IcdCode.objects.filter(code="I10").update(frequency=42)
    upload = SimpleUploadedFile("frequencies.csv", b"code,frequency\nI10,5\n", content_type="text/csv")

    response = admin_member_client.post(
        reverse("admin:generation_icdcode_import_frequencies"), {"file": upload, "delimiter": ","}
    )

    assert response.status_code == 200
    assert "frequencies.csv: line 1: expected the header code,count" in response.text
    assert "Nothing was imported." in response.text
    assert frequencies()["I10"] == 42


def test_the_admin_change_list_links_to_the_frequency_import(codes, admin_member_client):
    response = admin_member_client.get(reverse("admin:generation_icdcode_changelist"))
    assert reverse("admin:generation_icdcode_import_frequencies") in response.text


def test_clinicians_cannot_import_frequencies(codes, tmp_path, clinician_client):
    upload = SimpleUploadedFile("frequencies.csv", b"code,count\nI10,5\n", content_type="text/csv")

    response = clinician_client.post(reverse("admin:generation_icdcode_import_frequencies"), {"file": upload})

    assert response.status_code in (302, 403)
    assert frequencies()["I10"] is None


def test_the_admin_refuses_a_frequency_file_over_the_admin_import_limit(codes, admin_member_client, settings):
    settings.ADMIN_IMPORT_MAX_BYTES = 30
    rows = b"code,count\nI10,5\nE11.9,7\nJ45.909,9\n"
    upload = SimpleUploadedFile("frequencies.csv", rows, content_type="text/csv")

    response = admin_member_client.post(
        reverse("admin:generation_icdcode_import_frequencies"), {"file": upload, "delimiter": ","}
    )

    refusal = f"The file is {len(rows)} bytes; an admin import is read whole, so it may be at most 30 bytes"
    assert refusal in response.text
    assert frequencies()["I10"] != 5
