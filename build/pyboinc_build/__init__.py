"""Build the portable PyMW worker: `python build/build_workers.py` (or `nox -s build-workers`).

This package lives under `build/` and is imported by putting `build/` on sys.path (the
CLI script does it); it is deliberately not a package named `build`, which would shadow
PyPA's `build`. Outputs go to `dist/pyboinc/<os>/`.

    options ─> platform data (platforms/<os>/platform.toml) ─> platform module (linux, ...)
      │
      └─> steps: binding ─> stdlib zip ─> freeze (PyInstaller) ─> portable (launcher + payload)
                 ─> [onedir] ─> immutability check ─> install + manifest.json
"""
