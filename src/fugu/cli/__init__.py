"""The ``fugu`` command line (the only layer that prints, sets signal handlers and filters)."""
