"""PresetWatch: the presets directory as it is on disk now, each file read again only when it changed."""

from __future__ import annotations

import os
from pathlib import Path

from tui_trainer.config import Machine, PresetEntry
from tui_trainer.config.presets import preset_paths, read_preset


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written (in place or replaced by an editor's rename); None once it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class PresetWatch:
    """The presets of a directory; `poll()` lists it again and reads only the files added or changed.

    A poll costs a directory listing and one `stat` a file: cheap enough for a 1 s timer. An unchanged
    file keeps its PresetEntry object, so a caller can tell a changed preset by identity (`is not`).
    """

    def __init__(self, directory: str | Path, machine: Machine):
        self.directory = Path(directory)
        self.machine = machine
        self.entries: list[PresetEntry] = []
        self._read: dict[Path, tuple[tuple[int, int, int], PresetEntry]] = {}  # path -> (stamp when read, entry)

    def poll(self) -> bool:
        """Bring `entries` up to the directory's files now; True when the list (or a preset in it) changed."""
        try:
            paths = preset_paths(self.directory)
        except OSError:  # the directory went (or cannot be read): no presets, as at start
            paths = []
        read: dict[Path, tuple[tuple[int, int, int], PresetEntry]] = {}
        for path in paths:
            stamp = file_stamp(path)
            if stamp is None:  # removed since the listing
                continue
            known = self._read.get(path)
            read[path] = known if known is not None and known[0] == stamp else (stamp, read_preset(path, self.machine))
        entries = [entry for _, entry in read.values()]
        changed = len(entries) != len(self.entries) or any(a is not b for a, b in zip(entries, self.entries))
        self._read, self.entries = read, entries
        return changed
