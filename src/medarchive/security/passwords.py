"""Password complexity (SEC-01): at least three of four character classes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CharacterClassValidator:
    required = 3

    def validate(self, password: str, user: Any = None) -> None:
        classes = [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
        if sum(classes) < self.required:
            raise ValidationError(
                _("密码须至少包含小写字母、大写字母、数字、符号中的三类。"), code="password_too_simple"
            )

    def get_help_text(self) -> str:
        return _("密码须至少包含小写字母、大写字母、数字、符号中的三类。")


class TestArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 with minimal cost, used only when MEDARCHIVE_ENV=test so the suite stays quick."""

    algorithm = "argon2"
    time_cost = 1
    memory_cost = 1024
    parallelism = 1
