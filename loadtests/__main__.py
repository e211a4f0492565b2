"""``python -m loadtests``: the load-test runner (see ``--help``)."""

from loadtests.cli import main

main()
