"""Trainers: the DSSTNE-compatible sparse autoencoder engine (and, later, factorization machines)."""
