"""``python -m builder``: the same launcher as the ``builder`` command."""

from builder._launch import main

main()
