"""A package, so `tests/auth/test_service.py` never clashes with another directory's `test_service.py`."""
