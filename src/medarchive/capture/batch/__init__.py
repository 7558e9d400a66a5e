"""Batch manifests and watched folders (CAP-08): read the input, call capture.intake.receive.

`manifest.py` reads CSV/XLSX manifests (pure), `carrier.py` finds their files safely in a folder or
zip, `importer.py` turns rows into intake items, `folder.py` is the watched folder.
"""
