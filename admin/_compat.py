"""Import Flask-Admin's SQLAlchemy views, working around a packaging bug of Flask-Admin 2.2.1.

Flask-Admin 2.2.1 defines ``flask_admin.contrib.sqla._types.T_SESSION`` only when
Flask-SQLAlchemy is installed, yet imports it unconditionally, so ``flask_admin.contrib.sqla``
fails with ``ImportError: cannot import name 'T_SESSION'`` without Flask-SQLAlchemy (which this
project does not use: the admin shares app.db with the workers). The name is only a type hint;
when the import fails for that reason we define it as SQLAlchemy's Session and import again.
With a fixed Flask-Admin, or with Flask-SQLAlchemy installed, the first import succeeds and
nothing is touched.
"""

from __future__ import annotations

import sys

from sqlalchemy.orm import Session

#: The module whose missing name breaks the import.
_TYPES_MODULE = "flask_admin.contrib.sqla._types"

try:
    from flask_admin.contrib.sqla import ModelView
except ImportError as exc:  # pragma: no cover - depends on the installed Flask-Admin
    if exc.name != _TYPES_MODULE or "T_SESSION" not in str(exc) or _TYPES_MODULE not in sys.modules:
        raise
    sys.modules[_TYPES_MODULE].T_SESSION = Session  # type: ignore[attr-defined]
    from flask_admin.contrib.sqla import ModelView

from flask_admin.contrib.sqla import filters as sqla_filters  # noqa: E402
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual  # noqa: E402

__all__ = ["BaseSQLAFilter", "FilterEqual", "ModelView", "sqla_filters"]
