"""Scoring generators: metrics, feature networks, the evaluation protocol, curves against references."""
