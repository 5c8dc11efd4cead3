"""The training loop: deep supervision with the carry, two optimisers, EMA, evaluation,
checkpoints that resume exactly, and several processes (trm-spec sections 4 and 5).

One optimizer step = one supervision step of every sample in the batch:
    carry, out = model.step(carry, batch)        # halted samples restart with the new batch
    loss = act_loss(out, carry) / global_batch   # summed over samples, divided here
    backward; sum gradients over processes; AdamATan2 on weights; sign-SGD on embedding rows; EMA
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from trm.allocator import reuse_freed_memory
from trm.data.format import Split, read_dataset
from trm.data.sampler import TrainSampler, eval_batches
from trm.errors import CheckpointError, ConfigError, TRMError
from trm.model.layers import use_onednn_float32
from trm.model.loss import act_loss
from trm.model.precision import native_bfloat16, resolve_forward_dtype
from trm.model.trm import TRM, Carry
from trm.train import dist as tdist
from trm.train.augment import AUGMENTATIONS
from trm.train.checkpoint import (
    STATE,
    atomic_write_text,
    checkpoint_dirs,
    first_non_finite,
    load_train_state,
    remove_leftovers,
    run_lock,
    save_best,
    save_checkpoint,
)
from trm.train.config import TrainConfig, dump_config, load_train_config
from trm.train.optim import EMA, AdamATan2, lr_at, sign_sgd_embedding_step

METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss")


class TrainingDiverged(TRMError):
    """The loss or the training state became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run after it saved a checkpoint (`trm train` then exits
    with 128 + the signal's number, as a process killed by it would). A KeyboardInterrupt, so
    that callers which handle Ctrl-C (the `trm` command line, `trm demo`) handle it too."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass
class Progress:
    step: int = 0
    train_seconds: float = 0.0  # training time so far, evaluation and checkpoints excluded
    best_exact: float = -1.0


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def steps_for_epochs(epochs: int, config: TrainConfig, train: Split) -> int:
    """Optimizer steps in `epochs` epochs, estimated as the reference does."""
    meta = train.metadata
    return max(1, int(epochs * meta.total_groups * meta.mean_puzzle_examples / config.global_batch_size))


def total_steps(config: TrainConfig, train: Split) -> int:
    """Optimizer steps of the run: max_steps, or the reference's estimate from epochs."""
    return config.max_steps if config.max_steps is not None else steps_for_epochs(config.epochs, config, train)


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool = False) -> None:
        self.config = config
        self.run_dir = run_dir
        self.device = pick_device(config.device)
        self.dist = tdist.init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        if self.device.type == "cpu" and config.reuse_cpu_memory:
            reuse_freed_memory()
        use_onednn_float32(config.onednn_float32)
        if config.deterministic:
            # cuBLAS is deterministic only with a fixed workspace; it reads this when its handle is made
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)

        self.train_split = read_dataset(config.data.path, "train")
        self.test_split = read_dataset(config.data.path, "test") if (Path(config.data.path) / "test").is_dir() else None
        meta = self.train_split.metadata
        model_config = config.model.model_copy(update=dict(
            vocab_size=meta.vocab_size, seq_len=meta.seq_len, num_puzzle_identifiers=meta.num_puzzle_identifiers,
            # checkpoints record the dtype the run trained in, not "auto"
            forward_dtype=resolve_forward_dtype(config.model.forward_dtype, self.device),
        ))
        if config.model.forward_dtype == "auto" and self.dist.is_main:
            native = "native" if native_bfloat16(self.device) else "no native"
            print(f"forward_dtype auto: {model_config.forward_dtype} ({native} bfloat16 matmuls on {self.device})")
        torch.manual_seed(config.seed)  # identical initial weights on every rank, broadcast anyway
        self.model = TRM(model_config).to(self.device)
        if self.dist.enabled:
            tdist.broadcast_weights(self.model)
        if config.compile:
            self.model.compile_networks()

        opt_cls = AdamATan2 if config.optimizer == "adam_atan2" else torch.optim.AdamW
        self.optimizer = opt_cls(self.model.parameters(), lr=0.0, betas=(config.beta1, config.beta2),
                                 weight_decay=config.weight_decay)
        self.ema = EMA(self.model, config.ema_rate) if config.ema else None
        self.sampler = TrainSampler(self.train_split, config.global_batch_size, seed=config.seed,
                                    rank=self.dist.rank, world_size=self.dist.world_size,
                                    epochs_per_iter=config.eval_interval_epochs or 1)
        self.total_steps = total_steps(config, self.train_split)
        self.eval_interval = config.eval_interval or (
            steps_for_epochs(config.eval_interval_epochs, config, self.train_split)
            if config.eval_interval_epochs else self.total_steps
        )
        self.progress = Progress()
        self.carry: Carry | None = None
        self.resumed = resume
        self._signal: int | None = None  # set by SIGINT or SIGTERM: save and stop at the end of the step
        # Each rank draws its own exploration noise.
        torch.manual_seed(config.seed + self.dist.rank)
        if resume:
            self._restore()
        self.eval_model = copy.deepcopy(self.model)
        self.writer = _MetricsWriter(run_dir, config, self.dist.is_main)

    # ------------------------------------------------------------------ batches

    def _batches(self):
        augment = AUGMENTATIONS.get(self.config.data.augment)
        while True:
            for batch in self.sampler:
                if augment is not None:
                    # Seeded by (seed, step): nothing to save to resume the same draws.
                    rng = np.random.default_rng((self.config.seed, self.progress.step))
                    local = self.sampler.local_batch_size
                    batch = augment(batch, rng, self.dist.rank * local, self.config.global_batch_size)
                yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg, model = self.config, self.model
        model.train()
        if self.carry is None:
            self.carry = model.initial_carry(batch)
        self.carry, out = model.step(self.carry, batch)
        loss, metrics = act_loss(out, self.carry, cfg.model.loss)
        (loss / cfg.global_batch_size).backward()
        if self.dist.enabled:
            tdist.all_reduce_gradients(model)

        step = self.progress.step + 1
        lr = lr_at(step, cfg.lr, cfg.lr_warmup_steps, self.total_steps, cfg.lr_min_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if model.puzzle_emb is not None and model.puzzle_emb.rows is not None:
            emb_lr = lr_at(step, cfg.puzzle_emb_lr, cfg.lr_warmup_steps, self.total_steps, cfg.lr_min_ratio)
            sign_sgd_embedding_step(model.puzzle_emb.weight, model.puzzle_emb.rows.grad, model.puzzle_emb.ids,
                                    emb_lr, cfg.puzzle_emb_weight_decay)
            model.puzzle_emb.rows = model.puzzle_emb.ids = None
        if self.ema is not None:
            self.ema.update(model)
        self.progress.step = step

        values = torch.stack([metrics[k].double() for k in METRIC_KEYS])
        values = tdist.all_reduce_sum(values).tolist()
        summed = dict(zip(METRIC_KEYS, values))
        total_loss = summed["lm_loss"] + 0.5 * summed["q_halt_loss"]
        if not math.isfinite(total_loss):
            raise TrainingDiverged(f"the loss became {total_loss} at step {step}; stopping. {self._way_back()}")
        count = max(summed["count"], 1)
        return {
            "train/loss": total_loss / cfg.global_batch_size,
            "train/lm_loss": summed["lm_loss"] / cfg.global_batch_size,
            "train/q_halt_loss": summed["q_halt_loss"] / cfg.global_batch_size,
            "train/accuracy": summed["accuracy"] / count,
            "train/exact_accuracy": summed["exact_accuracy"] / count,
            "train/q_halt_accuracy": summed["q_halt_accuracy"] / count,
            "train/steps": summed["steps"] / count,
            "train/halted": summed["count"],
            "lr": lr,
        }

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Exact and token accuracy after each of N_sup steps (all samples run every step, as
        the reference evaluates), halting accuracy, on the test split with the EMA weights."""
        model = self._ema_model().eval()
        N = model.config.N_sup
        sums = torch.zeros(3 + 2 * N, dtype=torch.float64)  # count, q_halt_acc, loss, exact@s, token@s
        limit = self.config.data.eval_limit
        batch_size = self.config.eval_batch_size or self.config.global_batch_size
        for item in eval_batches(self.test_split, batch_size, self.dist.rank, self.dist.world_size):
            real = item.num_real if limit is None else int((item.example_indices < limit).sum())
            if real == 0:
                continue
            batch = {k: v.to(self.device) for k, v in item.batch.items()}
            out = model.rollout(batch, N)
            labels = batch["labels"][:real]
            mask = labels != -100
            correct = (out["preds"][:, :real] == labels) & mask  # (N, B, L)
            exact = (correct.sum(-1) == mask.sum(-1)).double()  # (N, B)
            token = correct.sum(-1).double() / mask.sum(-1).clamp_min(1)
            q_right = ((out["q_halt_logits"][-1, :real] >= 0) == exact[-1].bool()).double()
            sums[0] += real
            sums[1] += q_right.sum().cpu()
            sums[3:3 + N] += exact.sum(-1).cpu()
            sums[3 + N:] += token.sum(-1).cpu()
        sums = tdist.all_reduce_sum(sums.to(self.device)).cpu()
        count = max(sums[0].item(), 1)
        result = {
            "test/count": sums[0].item(),
            "test/exact_accuracy": sums[3 + N - 1].item() / count,
            "test/accuracy": sums[-1].item() / count,
            "test/q_halt_accuracy": sums[1].item() / count,
        }
        for s in range(N):
            result[f"test/exact_accuracy@{s + 1}"] = sums[3 + s].item() / count
        return result

    # ------------------------------------------------------------------ checkpoints

    def _state(self) -> dict[str, Any]:
        carry = None
        if self.carry is not None:
            c = self.carry
            carry = {"y": c.y.cpu(), "z": c.z.cpu(), "steps": c.steps.cpu(), "halted": c.halted.cpu(),
                     "data": {k: v.cpu() for k, v in c.data.items()}}
        local = {"carry": carry, "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None}
        ranks = [local]
        if self.dist.enabled:
            ranks = [None] * self.dist.world_size
            torch.distributed.all_gather_object(ranks, local)
        return {
            "step": self.progress.step,
            "train_seconds": self.progress.train_seconds,
            "best_exact": self.progress.best_exact,
            "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "ema": {k: v.cpu() for k, v in self.ema.state_dict().items()} if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "world_size": self.dist.world_size,
            "ranks": ranks,
        }

    def _newest_readable_state(self) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint that reads back whole and finite (None when the run saved none).
        Unreadable newer ones are reported and set aside as step_N.unreadable, so that they are
        neither resumed nor counted by keep_last."""
        found = checkpoint_dirs(self.run_dir)
        if not found:
            return None
        unreadable: list[tuple[Path, CheckpointError]] = []
        for checkpoint in reversed(found):
            try:
                state = load_train_state(checkpoint)
            except CheckpointError as e:
                unreadable.append((checkpoint, e))
                continue
            for bad, error in unreadable if self.dist.is_main else []:
                aside = bad.with_name(f"{bad.name}.unreadable")
                with contextlib.suppress(OSError):
                    os.replace(bad, aside)
                print(f"warning: {error}; resuming from {checkpoint}, the checkpoint before it "
                      f"({bad.name} is kept as {aside.name})", file=sys.stderr)
            return state, checkpoint
        reasons = "; ".join(str(error) for _, error in unreadable)
        raise CheckpointError(f"{self.run_dir}: no readable checkpoint to resume from: {reasons}")

    def _restore(self) -> None:
        found = self._newest_readable_state()
        if found is None:  # killed before its first checkpoint: the same run again from the start
            if self.dist.is_main:
                print(f"{self.run_dir}: no checkpoint saved yet; starting again from step 0")
            return
        state, checkpoint = found
        try:
            self.model.load_state_dict(state["model"])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.sampler.load_state_dict(state["sampler"])
        except (CheckpointError, RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(
                f"{checkpoint / STATE}: does not fit the run's config with the overrides given "
                f"(only settings that keep the model's shapes can change on resume): {' '.join(str(e).split())}"
            ) from None
        self.progress = Progress(state["step"], state["train_seconds"], state["best_exact"])
        if state["world_size"] == self.dist.world_size:
            mine = state["ranks"][self.dist.rank]
            torch.set_rng_state(mine["torch_rng"])
            if mine["cuda_rng"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda_rng"])
            if mine["carry"] is not None:
                c = mine["carry"]
                self.carry = Carry(c["y"].to(self.device), c["z"].to(self.device), c["steps"].to(self.device),
                                   c["halted"].to(self.device), {k: v.to(self.device) for k, v in c["data"].items()})
        elif self.dist.is_main:
            print(f"resuming on {self.dist.world_size} processes instead of {state['world_size']}: "
                  "in-flight samples restart")

    def save(self, eval_metrics: dict[str, float] | None) -> None:
        state = self._state()  # a collective when distributed: every rank takes part
        if not self.dist.is_main:
            return
        extra = {"step": self.progress.step, "metrics": eval_metrics or {}}
        save_checkpoint(self.run_dir, self.progress.step, state, self._ema_model(), self.config.keep_last, extra)

    def _check_finite(self) -> None:
        """Refuse to evaluate or save a state holding NaN or Inf. The loss is checked every
        step, but an update can overflow the weights, the EMA, the puzzle embeddings or the
        optimizer moments while the loss before it was still finite. One pass over the state:
        run before each evaluation and checkpoint, not every step."""
        model = self.model
        live = {
            "model": model.state_dict(),  # the weights and the puzzle-embedding table (a buffer)
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": {n: self.optimizer.state[p] for n, p in model.named_parameters() if p in self.optimizer.state},
            "carry": {"y": self.carry.y, "z": self.carry.z} if self.carry is not None else None,
        }
        bad = first_non_finite(live)
        if self._any_rank(bad is not None)[0]:
            where = f"'{bad}' holds NaN or infinite values" if bad else "another process's state is not finite"
            raise TrainingDiverged(
                f"the training state diverged by step {self.progress.step}: {where}, although the loss was "
                f"still finite; nothing was saved at this step. {self._way_back()}"
            )

    def _way_back(self) -> str:
        """Where a diverged run can continue from, as it stands on disk."""
        lower = f"lr={self.config.lr / 3:g}"
        found = checkpoint_dirs(self.run_dir)
        if found:
            return (f"The last checkpoint, {found[-1]}, was checked to be finite when saved: resume from it "
                    f"with a lower learning rate, e.g. trm train --resume {self.run_dir} {lower}")
        return (f"No checkpoint was saved before: start again with a lower learning rate, e.g. "
                f"trm train --resume {self.run_dir} {lower} (it restarts from step 0)")

    def _any_rank(self, *flags: bool) -> list[bool]:
        """Each flag raised on any process: every process must take the same branch."""
        if not self.dist.enabled:
            return list(flags)
        votes = tdist.all_reduce_sum(torch.tensor(flags, dtype=torch.float32, device=self.device))
        return [v > 0 for v in votes.tolist()]

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """SIGINT (Ctrl-C) and SIGTERM (kill, job schedulers) ask the run to save a checkpoint at
        the end of the current step and stop; a second one aborts at once, without saving."""
        if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread
            yield
            return

        def ask_to_stop(signum, frame):
            if self._signal is not None:
                raise KeyboardInterrupt
            self._signal = signum
            if self.dist.is_main:  # os.write: print could re-enter a write the handler interrupted
                os.write(2, f"\n{signal.Signals(signum).name}: saving a checkpoint at the end of this step, then "
                            "stopping (Ctrl-C again stops at once, without saving)\n".encode())

        # A signal ignored at start stays ignored (as Python leaves SIGINT for a shell script's `cmd &`).
        asked = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {s: signal.signal(s, ask_to_stop) for s in asked}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, float]:
        cfg = self.config
        eval_every = self.eval_interval
        ckpt_every = cfg.checkpoint_interval or eval_every
        budget = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
        save_seconds = cfg.checkpoint_minutes * 60 if cfg.checkpoint_minutes else math.inf
        last_eval: dict[str, float] = {}
        batches = self._batches()
        self.writer.start(self.progress.step if self.resumed else None)
        bar = tqdm(total=self.total_steps, initial=self.progress.step, disable=not self.dist.is_main,
                   desc="train", unit="step", dynamic_ncols=True)
        window_start, window_steps = time.perf_counter(), 0
        last_save = time.monotonic()
        with self._stop_on_signals(), contextlib.ExitStack() as cleanup:
            cleanup.callback(self.writer.close)
            cleanup.callback(bar.close)
            while self.progress.step < self.total_steps and self.progress.train_seconds < budget:
                t0 = time.perf_counter()
                metrics = self.train_step(next(batches))
                self.progress.train_seconds += time.perf_counter() - t0
                window_steps += 1
                step = self.progress.step
                done = step >= self.total_steps or self.progress.train_seconds >= budget
                bar.update(1)
                if step % cfg.log.every == 0 or done:
                    rate = window_steps * cfg.global_batch_size / (time.perf_counter() - window_start)
                    metrics["train/examples_x_steps_per_s"] = rate
                    metrics["train_seconds"] = self.progress.train_seconds
                    self.writer.write(step, metrics)
                    bar.set_postfix_str(f"loss {metrics['train/loss']:.3f} exact {metrics['train/exact_accuracy']:.3f}"
                                        f" {rate:.0f} ex*steps/s")
                    window_start, window_steps = time.perf_counter(), 0
                stop, save_due = self._any_rank(self._signal is not None, time.monotonic() - last_save >= save_seconds)
                evaluate_now = self.test_split is not None and (step % eval_every == 0 or done)
                save_now = step % ckpt_every == 0 or done or stop or save_due
                if evaluate_now or save_now:
                    self._check_finite()  # nothing non-finite is evaluated, saved, or kept as best/
                if evaluate_now:
                    last_eval = self._evaluate_and_keep_best(bar)
                    window_start, window_steps = time.perf_counter(), 0
                if save_now:
                    self.save(last_eval)
                    last_save = time.monotonic()
                    window_start, window_steps = time.perf_counter(), 0
                if stop and not done:
                    signum = self._signal or signal.SIGTERM  # another process may have received it
                    saved = self.run_dir / "checkpoints" / f"step_{step:08d}"
                    raise TrainingInterrupted(signum, (
                        f"stopped by {signal.Signals(signum).name} at step {step}; saved {saved}. "
                        f"Resume with: trm train --resume {self.run_dir}"
                    ))
        return last_eval

    def _evaluate_and_keep_best(self, bar: tqdm) -> dict[str, float]:
        step = self.progress.step
        result = self.evaluate()
        result["train_seconds"] = self.progress.train_seconds
        self.writer.write(step, result)
        if self.dist.is_main:
            minutes = self.progress.train_seconds / 60
            bar.write(f"step {step}: test exact {result['test/exact_accuracy']:.4f}, "
                      f"token {result['test/accuracy']:.4f} ({minutes:.1f} min of training)")
        if result["test/exact_accuracy"] > self.progress.best_exact and self.dist.is_main:
            self.progress.best_exact = result["test/exact_accuracy"]
            save_best(self.run_dir, self._ema_model(), {"step": step, "metrics": result})
        if self.dist.enabled:  # every rank must agree on the best score it saves
            best = torch.tensor([self.progress.best_exact], dtype=torch.float64, device=self.device)
            torch.distributed.broadcast(best, src=0)
            self.progress.best_exact = best.item()
        return result

    def _ema_model(self) -> TRM:
        model = self.eval_model
        model.load_state_dict(self.model.state_dict())
        if self.ema is not None:
            self.ema.copy_to(model)
        return model


class _MetricsWriter:
    """metrics.jsonl (always), TensorBoard (when installed or asked), Weights & Biases (when asked).

    Training metrics are named `train/...` and test metrics `test/...` everywhere, so the two
    cannot be confused (trm-spec section 10)."""

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
            self.wandb = self._wandb.init(project=self.config.log.wandb_project, name=self.config.name,
                                          config=self.config.model_dump(mode="json"), resume="allow")

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


def _prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start a fresh run over an earlier one; remove what writes killed mid-way left."""
    metrics = run_dir / "metrics.jsonl"
    if not resume and (checkpoint_dirs(run_dir) or (run_dir / "best").is_dir()):
        raise TRMError(f"{run_dir}: already holds a run; resume it with --resume {run_dir} or choose another name")
    if not resume and metrics.exists() and metrics.stat().st_size > 0:
        raise TRMError(
            f"{metrics}: holds the metrics of an earlier run that saved no checkpoint; rerun it with "
            f"--resume {run_dir} (it starts again from step 0 and rewrites them), or delete the file, "
            "or choose another name"
        )
    for path in remove_leftovers(run_dir):
        print(f"removed {path}, left by a write that was interrupted")


def train(config: TrainConfig, resume: bool = False) -> dict[str, float]:
    """Run (or resume) training as configured; returns the last test metrics.

    Nothing is written to the run directory before the config is validated, the dataset is
    readable, the directory is locked against a second run, and the checkpoint resumed from
    (if any) fits the config. Only the first process holds the lock and writes."""
    run_dir = config.resolved_run_dir
    read_dataset(config.data.path, "train")  # memory-mapped: a cheap check before touching run_dir
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        with run_lock(run_dir) if main else contextlib.nullcontext():
            if main:
                _prepare_run_dir(run_dir, resume)
            trainer = Trainer(config, run_dir, resume=resume)
            if main:
                atomic_write_text(run_dir / "config.yaml", dump_config(config))
            return trainer.run()
    finally:
        tdist.shutdown()


def resume_config(run_dir: str | os.PathLike, overrides: list[str]) -> TrainConfig:
    """The saved config of a run, with `key=value` overrides (e.g. a longer max_steps)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise TRMError(f"{run_dir}: no config.yaml; not a run directory")
    config = load_train_config(path, overrides)
    return config.model_copy(update={"run_dir": str(run_dir)})

