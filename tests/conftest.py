"""Suite-wide rules come from the package's own pytest plugin (spaceactors_pytest.py).

pyproject.toml sets ``trio_mode = true`` and ``spaceactors_virtual_time = true``: every async
test runs under pytest-trio, and one that takes no clock fixture as an argument
(``autojump_clock``, ``virtual_clock``, ``mock_clock``) fails, saying so.
"""
