"""Local mode: the pipeline's runtime on one machine (embedded AWS on loopback, local HTTP for the API)."""
