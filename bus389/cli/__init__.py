"""The ``bus389`` command line: one module per command group, wired together in :mod:`bus389.cli.main`."""
