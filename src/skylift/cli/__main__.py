"""`python -m skylift.cli`."""

from skylift.cli import main

main()
