"""The publish Lambda (a step of the pipeline's state machine: load a model version, switch the live one)."""
