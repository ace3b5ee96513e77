"""Create Superset's admin user, or set its password: run in Superset's own environment.

``stack/superset.py`` runs this instead of ``superset fab create-admin`` /
``reset-password``, which take the password on the command line (visible to
every user in ``ps``). Here it comes in the environment: SUPERSET_ADMIN_USER
and SUPERSET_ADMIN_PASSWORD.
"""

import os
import sys

from superset.app import create_app


def main() -> int:
    username = os.environ["SUPERSET_ADMIN_USER"]
    password = os.environ["SUPERSET_ADMIN_PASSWORD"]
    app = create_app()
    with app.app_context():
        from superset import security_manager

        user = security_manager.find_user(username=username)
        if user is None:
            admin = security_manager.find_role("Admin")
            if admin is None:
                print("Superset has no Admin role: run `superset init` first", file=sys.stderr)
                return 1
            created = security_manager.add_user(
                username, "Superset", "Admin", f"{username}@localhost", admin, password=password
            )
            if not created:
                print(f"could not create the Superset user {username!r}", file=sys.stderr)
                return 1
            print(f"created the Superset user {username!r}")
        else:
            security_manager.reset_password(user.id, password)
            print(f"set the password of the Superset user {username!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
