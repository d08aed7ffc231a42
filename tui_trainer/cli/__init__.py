"""The `tui-trainer` command line."""
