"""Serving: the recommendation API's logic (validation, reads from the serving table, fold-in, ranking).

The Lambda in `lambdas/recommend/` and the local HTTP adapter in `local_mode/` only wire this package to
their event sources. Nothing heavy loads at import: boto3 loads when the first request builds the
clients, numpy only on the fold-in path. See docs/serving.md.
"""
