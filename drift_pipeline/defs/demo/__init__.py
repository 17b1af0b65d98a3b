"""The main job (`drift-pipeline demo`): drives the code location end to end on the embedded default.

Its inputs ship inside the package (`data/`), so an installed wheel can run it.
"""
