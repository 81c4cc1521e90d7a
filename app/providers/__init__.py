"""Research, generation, publishing and metrics providers (see base.py for the interfaces)."""
