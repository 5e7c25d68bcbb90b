"""Development only: `smscode dev`, the embedded Redis and the local cloud emulation.

The runtime never imports this package (import-linter checks it), but for the `dev` command.
"""
