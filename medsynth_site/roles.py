"""The two roles, as Django groups with permissions.

Views check permissions (`permission_required`), never group names, so a site can
grant a single permission to a user without inventing a role.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from generation.errors import DomainError

CLINICIAN = "clinician"
ADMIN = "admin"
ROLES = (CLINICIAN, ADMIN)

CLINICIAN_PERMISSIONS = (
    "review.review_case",
    "review.add_surveyresponse",
    "review.change_surveyresponse",
    "review.view_surveyresponse",
    "review.add_variablesuggestion",
)
ADMIN_PERMISSIONS = (
    *CLINICIAN_PERMISSIONS,
    "review.adjudicate_case",
    "review.assign_reviewers",
    "review.view_reviewdecision",
    "review.add_guideline",
    "review.change_guideline",
    "review.view_guideline",
    "review.add_datasetexport",
    "review.view_datasetexport",
    "review.add_datasetimport",
    "review.view_datasetimport",
    "generation.launch_batch",
    "generation.add_surveysnapshot",
    "generation.view_surveysnapshot",
    "generation.view_generationbatch",
    "generation.change_generationbatch",
    "generation.view_case",
    "generation.view_artefactversion",
    "generation.view_agentcall",
    "generation.view_pipelinestep",
    "generation.view_icdcode",
    "generation.change_icdcode",
    "generation.view_physicianrole",
    "generation.add_physicianrole",
    "generation.change_physicianrole",
    "generation.view_qualityvariable",
    "generation.view_llmendpoint",
    "generation.add_llmendpoint",
    "generation.change_llmendpoint",
    "generation.view_llmmodel",
    "generation.add_llmmodel",
    "generation.change_llmmodel",
    "generation.view_examplerule",
    "generation.add_examplerule",
    "generation.change_examplerule",
    "generation.delete_examplerule",
    "generation.view_incontextexample",
)
ROLE_PERMISSIONS = {CLINICIAN: CLINICIAN_PERMISSIONS, ADMIN: ADMIN_PERMISSIONS}


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def role_groups_sync(**_: Any) -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    for role, permissions in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set([_permission(dotted) for dotted in permissions])


def user_is_admin(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm("generation.launch_batch"))


def user_is_clinician(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm("review.review_case"))


class UserExists(ValueError):
    """The username is taken."""


class PasswordRefused(DomainError):
    """The given password fails AUTH_PASSWORD_VALIDATORS."""


def user_create(*, username: str, role: str, password: str | None = None) -> tuple[User, str]:
    """Create a user in a role; returns (user, password), generating one when none is given.
    A given password must pass the password validators, as in the admin. Admins are also
    staff, for the Django admin site."""
    if User.objects.filter(username=username).exists():
        raise UserExists(f"User {username!r} already exists.")
    if password:
        try:
            validate_password(password, user=User(username=username))
        except ValidationError as refusal:
            raise PasswordRefused(f"Password refused: {' '.join(refusal.messages)}") from refusal
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, is_staff=role == ADMIN)
        user.groups.add(Group.objects.get(name=role))
    return user, password
