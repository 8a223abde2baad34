import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from medsynth_site.roles import user_is_admin, user_is_clinician


@pytest.mark.django_db
def test_create_user_prints_a_generated_password_that_works(capsys):
    call_command("create_user", "dr_lee", role="clinician")
    out = capsys.readouterr().out
    password = out.split("Password: ")[1].strip()
    user = get_user_model().objects.get(username="dr_lee")
    assert user.check_password(password)
    assert user_is_clinician(user)
    assert not user_is_admin(user)
    assert not user.is_staff


@pytest.mark.django_db
def test_create_user_with_a_password_makes_a_staff_admin(capsys):
    call_command("create_user", "ops", role="admin", password="a-long-enough-password")
    assert "Password:" not in capsys.readouterr().out
    user = get_user_model().objects.get(username="ops")
    assert user.check_password("a-long-enough-password")
    assert user.is_staff
    assert user_is_admin(user)


@pytest.mark.django_db
def test_create_user_refuses_a_taken_username_and_an_unknown_role():
    call_command("create_user", "dr_lee", role="clinician")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "dr_lee", role="admin")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_user", "someone", "--role", "superhero")


@pytest.mark.django_db
def test_ensure_first_admin_creates_one_admin_only_once(capsys):
    call_command("ensure_first_admin")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].strip()
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(password)
    assert user_is_admin(admin)

    call_command("ensure_first_admin")
    assert "no first admin created" in capsys.readouterr().out
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("8302749163", "entirely numeric"),
        ("dr_lee_2024", "too similar to the username"),
    ],
)
def test_create_user_refuses_a_password_the_validators_refuse(password, reason):
    with pytest.raises(CommandError, match=f"Password refused: .*{reason}"):
        call_command("create_user", "dr_lee_2024", role="clinician", password=password)
    assert not get_user_model().objects.filter(username="dr_lee_2024").exists()
