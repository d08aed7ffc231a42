"""The Textual app: launch screen, run dashboard, run history. The only package that imports Textual.

Nothing here imports torch at module level, so the first frame is drawn before torch is loaded.
Entry point: `tui_trainer.ui.app.run_app`.
"""
