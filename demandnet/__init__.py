"""demandnet: one end-to-end network for the demand of a classified ad (photo + Russian text + table)."""

__version__ = "0.1.0"
