"""Infrastructure only: one construct module per logical unit and one composition stack.

Imports `recsys.contracts` and nothing else from the runtime code (DESIGN.md §3); runtime code is found
by path when it has to be packaged.
"""
