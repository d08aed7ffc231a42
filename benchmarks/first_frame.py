"""Time to the app's first frame, from process start, in a real terminal (run in a pty by bench.py).

    BENCH_T0=<time.time() at spawn> python benchmarks/first_frame.py OUT.json [tui-trainer args...]

Runs the real `tui-trainer` entry point; the only addition is an observer on the app's own
first-frame hook, which writes when the frame came and whether torch had been imported, then quits.
"""

from __future__ import annotations

import json
import os
import sys
import time

T_START = time.time()


def main() -> int:
    out_path, args = sys.argv[1], sys.argv[2:]
    t0 = float(os.environ.get("BENCH_T0", T_START))
    from tui_trainer.ui.app import TrainerApp

    original = TrainerApp._after_first_frame

    def observed(self) -> None:
        now = time.time()
        original(self)
        with open(out_path, "w") as f:
            json.dump({"first_frame_s": now - t0, "interpreter_start_s": T_START - t0,
                       "app_first_frame_s": self.first_frame_s,
                       "torch_loaded_at_first_frame": self.torch_loaded_at_first_frame}, f)
        self.set_timer(0.3, lambda: self.exit(0))

    TrainerApp._after_first_frame = observed
    from tui_trainer.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
