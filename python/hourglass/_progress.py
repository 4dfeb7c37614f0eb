"""Training progress: a bar per epoch (tqdm: terminal or Jupyter) or a line per epoch, and the
per-epoch history kept for plotting."""

from __future__ import annotations

import json
import sys


class Progress:
    """The callback the native training calls with its events."""

    def __init__(self, verbose: int):
        self.verbose = int(verbose or 0)
        self.history: list[dict] = []
        self._bar = None
        # Batch events only feed the bar.
        self.wants_batches = self.verbose == 1

    def __call__(self, kind, *args):
        if kind == "epoch_start":
            epoch, epochs, batches = args
            if self.verbose == 1:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=batches, desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch")
        elif kind == "batch":
            _, loss = args
            if self._bar is not None:
                self._bar.update(1)
                self._bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
        elif kind == "epoch_end":
            stats = json.loads(args[0])
            self.history.append(stats)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self.verbose >= 1:
                line = line_of(stats)
                if self.verbose == 1:
                    from tqdm.auto import tqdm

                    tqdm.write(line)
                else:
                    print(line, file=sys.stderr)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def line_of(s: dict) -> str:
    """One epoch as the command line prints it."""
    valid = "" if s.get("valid_loss") is None else f"  valid {s['valid_loss']:.6f}{' *' if s.get('best') else ''}"
    acc = "" if s.get("train_accuracy") is None else f"  accuracy {100 * s['train_accuracy']:.2f} %"
    return (
        f"epoch {s['epoch']}  train {s['train_loss']:.6f}{valid}{acc}  lr {s['lr']:.2e}  "
        f"{s['samples_per_sec']:.0f} samples/s"
    )
