"""Calendar adapters behind one small interface (see :mod:`connectors.base`).

All network I/O of the project lives in this package.
"""
