import pytest
from django.core.management import call_command

from generation.models import IcdCode


@pytest.mark.slow
@pytest.mark.django_db
def test_it_loads_the_whole_catalogue_with_hierarchy_and_is_idempotent(capsys):
    call_command("load_icd10")
    first_output = capsys.readouterr().out
    total = IcdCode.objects.count()

    assert 98_000 <= total <= 99_000
    assert f"{total} codes ({total} new" in first_output
    diabetes = IcdCode.objects.select_related("parent").get(code="E11.9")
    assert diabetes.code_compact == "E119"
    assert diabetes.description == "Type 2 diabetes mellitus without complications"
    assert diabetes.parent.code == "E11"
    assert diabetes.is_billable
    assert not diabetes.parent.is_billable
    assert diabetes.parent.parent is None
    assert (diabetes.chapter, diabetes.block) == ("4", "E08-E13")
    assert diabetes.depth == 2
    assert IcdCode.objects.get(code="M25.562").parent.code == "M25.56"

    IcdCode.objects.filter(code="E11.9").update(frequency=1234)
    call_command("load_icd10")
    second_output = capsys.readouterr().out

    assert IcdCode.objects.count() == total
    assert "0 new" in second_output
    assert IcdCode.objects.get(code="E11.9").frequency == 1234, "a reload keeps imported frequencies"


@pytest.mark.django_db
def test_if_empty_does_nothing_when_codes_exist(capsys):
    IcdCode.objects.create(
        code="I10",
        code_compact="I10",
        description="Essential (primary) hypertension",
        chapter="9",
        chapter_title="c",
        block="I10-I1A",
        block_title="b",
        depth=1,
        is_billable=True,
    )
    call_command("load_icd10", "--if-empty")
    assert "already loaded (1 codes)" in capsys.readouterr().out
    assert IcdCode.objects.count() == 1
