"""What a run reports as it trains: metrics.jsonl, and TensorBoard or Weights & Biases when asked.

Training metrics are named `train/...` and test metrics `test/...` everywhere, so the two
cannot be confused (trm-spec section 10).
"""

from __future__ import annotations

import json
from pathlib import Path

from trm.errors import ConfigError
from trm.eval.evaluate import EvalReport
from trm.files import atomic_write_text
from trm.train.config import TrainConfig


def step_metrics(summed: dict[str, float], global_batch_size: int, lr: float) -> dict[str, float]:
    """One optimizer step's line: `summed` holds the loss head's metrics summed over the batch
    and the processes (`trm.model.loss.act_loss`); rates are over the samples that halted."""
    total_loss = summed["lm_loss"] + 0.5 * summed["q_halt_loss"]
    count = max(summed["count"], 1)
    return {
        "train/loss": total_loss / global_batch_size,
        "train/lm_loss": summed["lm_loss"] / global_batch_size,
        "train/q_halt_loss": summed["q_halt_loss"] / global_batch_size,
        "train/accuracy": summed["accuracy"] / count,
        "train/exact_accuracy": summed["exact_accuracy"] / count,
        "train/q_halt_accuracy": summed["q_halt_accuracy"] / count,
        "train/steps": summed["steps"] / count,
        "train/halted": summed["count"],
        "lr": lr,
    }


def evaluation_metrics(report: EvalReport) -> dict[str, float]:
    """An evaluation's line, named as training has always named it: `test/accuracy` is the
    token accuracy and `test/q_halt_accuracy` the halting accuracy of `trm eval`'s report."""
    result = {
        "test/count": report.num_examples,
        "test/exact_accuracy": report.exact_accuracy,
        "test/accuracy": report.token_accuracy,
        "test/q_halt_accuracy": report.halting_accuracy,
    }
    if report.valid_rate is not None:
        result["test/valid_rate"] = report.valid_rate
    for step, exact in enumerate(report.exact_accuracy_per_step, start=1):
        result[f"test/exact_accuracy@{step}"] = exact
    return result


class MetricsWriter:
    """metrics.jsonl (always), TensorBoard (when installed or asked), Weights & Biases (when asked).
    Only the first process writes (`enabled`)."""

    def __init__(self, run_dir: Path, config: TrainConfig, enabled: bool) -> None:
        """Check that the loggers asked for are installed; nothing is written before `start`."""
        self.enabled, self.run_dir, self.config = enabled, run_dir, config
        self.path = run_dir / "metrics.jsonl"
        self.tb = self.wandb = None
        self._tensorboard = self._wandb = None
        if not enabled:
            return
        if config.log.tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter
            except ImportError:
                if config.log.tensorboard:
                    raise ConfigError("log.tensorboard: the tensorboard package is not installed") from None
        if config.log.wandb:
            try:
                import wandb
            except ImportError:
                raise ConfigError("log.wandb: the wandb package is not installed (pip install wandb)") from None
            self._wandb = wandb

    def start(self, resume_step: int | None) -> None:
        """Open the logs. A fresh run starts metrics.jsonl (`train` refused a directory holding
        an earlier run's); a resumed one keeps its lines up to the step it resumes from."""
        if not self.enabled:
            return
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            atomic_write_text(self.path, metrics_up_to(self.path.read_text(), resume_step))
        if self._tensorboard is not None:
            self.tb = self._tensorboard(str(self.run_dir / "tensorboard"))
        if self._wandb is not None:
            self.wandb = self._wandb.init(
                project=self.config.log.wandb_project,
                name=self.config.name,
                config=self.config.model_dump(mode="json"),
                resume="allow",
            )

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def metrics_up_to(text: str, step: int) -> str:
    """The lines of metrics.jsonl `text` up to `step` (the later ones are about to be written
    again). A last line cut short by a kill is dropped; a line that is not JSON is kept as it is."""
    *whole, _cut_short = text.split("\n")  # the text of a whole file ends with a newline
    kept = []
    for line in whole:
        try:
            if json.loads(line)["step"] > step:
                continue
        except (ValueError, KeyError, TypeError):
            if not line:
                continue
        kept.append(line + "\n")
    return "".join(kept)
