"""ValidateUser written in Python: the same WIT world as the Rust reference activity."""

import wit_world
from wit_world.imports import activity_host_users_types as types
from wit_world.imports import logging


class WitWorld(wit_world.WitWorld):
    def validate_user(self, user: types.User) -> types.Validation:
        reasons = []
        if not user.user_id:
            reasons.append("user_id: must not be empty")
        if user.email.count("@") != 1:
            reasons.append("email: must contain exactly one '@'")
        if not user.name.strip():
            reasons.append("name: must not be empty")
        logging.log(logging.Level.INFO, "validate-user-py",
                    f"checked {user.user_id!r}: {len(reasons)} problem(s)")
        return types.Validation(valid=not reasons, reasons=reasons)
