"""The training engine: data, models, strategies, precisions and the loop.

Importing this package does not import torch; the modules inside do.
"""
