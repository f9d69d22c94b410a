"""Evaluation: pairing and loading inputs, the runner, the metric schema, reports, the conditioning gap."""
