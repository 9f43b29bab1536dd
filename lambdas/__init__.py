"""AWS Lambda handlers: one folder per function, each a thin layer over `recsys`."""
