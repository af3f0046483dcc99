"""failwidgets: Jupyter widgets for finding where and why image models fail."""
__version__ = "0.1.0"
