"""The app's state without Textual: following runs, editing options, the machine view, formatting.

`ui` renders what this package holds; nothing here imports Textual or rich, so it is tested without an app.
"""
