"""tui-trainer: a keyboard-driven terminal experiment runner for PyTorch training.

Importing this package is cheap on purpose: torch and scikit-learn load only when a run
starts or a GPU is probed, so `tui-trainer --help` and the app's first frame stay fast.
"""

__version__ = "0.1.0"
