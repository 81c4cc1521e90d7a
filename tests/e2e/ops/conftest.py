"""The ``ops`` fixture (see :mod:`tests.ops_harness`)."""

from tests.ops_harness import ops  # noqa: F401 - a fixture, exposed to this package's tests
