"""Fake third-party APIs served on real local sockets (see :mod:`tests.fakes.http`)."""
