"""`python -m smscode_dev` (what `smscode dev` runs): the local stack."""

from smscode_dev.cli import main

main()
