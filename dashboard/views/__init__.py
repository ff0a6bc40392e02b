"""The dashboard's pages, one module each, every one a ``render()`` function."""
