"""diff: desired vs live, per resource, at field level; secrets redacted."""
