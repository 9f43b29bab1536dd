"""The pipeline step Lambdas (evaluate and gate, finish a run, scheduled run requests)."""
