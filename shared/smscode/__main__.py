"""`python -m smscode` runs the command line."""

from smscode.entrypoints.cli import main

main()
