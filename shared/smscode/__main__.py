"""`python -m smscode` runs the command line."""

from smscode.cli import main

main()
