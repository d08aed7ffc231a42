"""The app's screens: launch, run dashboard, runs, run detail, compare, and the small modals."""
