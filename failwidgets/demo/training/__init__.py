"""Scripts that train and write the demo's shipped weights and package data: ``python -m failwidgets.demo.training.<name>``."""
