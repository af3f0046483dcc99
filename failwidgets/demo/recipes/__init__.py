"""Per-method demo glue: what each widget's ``from_demo`` needs at run time (one module per method)."""
