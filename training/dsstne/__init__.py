"""A DSSTNE-compatible sparse autoencoder engine in PyTorch: DSSTNE's files, config and command lines."""
