"""The shared core of the recommender pipeline: contracts, validation, data, evaluation and the CLI.

It imports nothing else from this repository (DESIGN.md §3), so Lambdas, the Glue job, the trainers and
local mode can all depend on it.
"""

__version__ = "0.1.0"
