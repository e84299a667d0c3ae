"""Stress suite: processes x threads against one shared compile cache (run_stress.py, tox -e stress)."""
