"""Model analysis: parameter counts, FLOPs (multiply-adds) and activations."""

from .model_stats import PAPER_NUMBERS, family_table, format_table, model_statistics

__all__ = ["model_statistics", "family_table", "format_table", "PAPER_NUMBERS"]
