"""Window presets of the viewer (CT, Hounsfield units): centre (level) and width, from the usual reading windows
(Radiopaedia, "Windowing (CT)"; stroke window per the early-ischaemia reading literature). See
docs/domains/imaging.md."""

from __future__ import annotations

# key, label, centre, width, keyboard shortcut
WINDOW_PRESETS: tuple[tuple[str, str, int, int, str], ...] = (
    ("brain", "Cerveau", 40, 80, "1"),
    ("subdural", "Sous-dural", 75, 215, "2"),
    ("stroke", "AVC", 40, 40, "3"),
    ("bone", "Os", 400, 1800, "4"),
    ("lung", "Poumon", -600, 1500, "5"),
    ("abdomen", "Abdomen", 50, 400, "6"),
)
