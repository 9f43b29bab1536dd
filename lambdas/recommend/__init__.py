"""The recommendation Lambda (HTTP API behind a Function URL with AWS_IAM auth)."""
