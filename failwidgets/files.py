"""Public file helpers: atomic writes and safe file names (what every failwidgets writer uses).

``atomic_write(path, text_or_bytes)`` and ``atomic_open(path, "w")`` write through a temporary file in
the target's folder, fsync and ``os.replace``, so readers never see a truncated file and a crash leaves
the previous version intact. ``safe_filename(name)`` turns a user string into one safe path component;
``path_inside(folder, name)`` checks that a joined path stays inside its folder.
"""

from failwidgets._io import atomic_open, atomic_write, clean_stale_temps, path_inside, safe_filename

__all__ = ["atomic_write", "atomic_open", "safe_filename", "path_inside", "clean_stale_temps"]
