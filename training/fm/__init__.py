"""Factorization machines: SageMaker's built-in algorithm and a local PyTorch trainer behind one call.

Both backends read the FM channels and `manifest.json` that preprocessing writes and produce one model
artifact (`artifact.FmModel`, saved as `.npz`), which the top-k code reads.
"""
