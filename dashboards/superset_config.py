"""Superset's configuration for `make dashboards` (read by Superset through SUPERSET_CONFIG_PATH).

Nothing secret lives here: ``stack/superset.py`` starts Superset with
SUPERSET_HOME (its data folder, DATA_DIR/superset) and SUPERSET_SECRET_KEY (from
the environment, or generated once and kept in that folder, mode 0600) set.
The warehouse connection is not configured here either: it is imported with
the dashboards (``dashboards/assets/databases/``), its password passed in the
import request.
"""

import os

# Superset's own metadata (users, dashboards, charts) in SQLite beside the
# other embedded servers' data. One gunicorn worker, so SQLite's single
# writer is enough.
_home = os.environ["SUPERSET_HOME"]  # lower case: not a setting of Superset's
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.path.join(_home, 'superset.db')}?check_same_thread=false"

# Signs sessions and encrypts the warehouse password in the metadata DB.
# Superset refuses to start with its built-in placeholder, so no default here.
SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]

# No phoning home: the content security policy below is Superset's default
# minus the Scarf telemetry pixel and the map tile and font servers, so the
# browser never asks anything of a host other than this one.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
