"""``python -m roost.cli``: the ``roost`` command."""

from roost.cli.app import main

main()
