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
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from trm.backends import get_backend, reuse_freed_memory
from trm.data.format import read_dataset
from trm.data.sampler import TrainSampler
from trm.errors import TRMError
from trm.eval.evaluate import evaluate
from trm.files import atomic_write_text
from trm.model.backend_choice import choose_backend
from trm.model.checkpoint import initial_weights, load_weights
from trm.model.loss import act_loss
from trm.model.precision import native_bfloat16, resolve_forward_dtype
from trm.model.trm import TRM, Carry
from trm.train import dist as tdist
from trm.train.augment import AUGMENTATIONS
from trm.train.checkpoint import (
    first_non_finite,
    run_lock,
    save_best,
    save_checkpoint,
)
from trm.train.config import TrainConfig, dump_config
from trm.train.dist import pick_device
from trm.train.metrics_log import MetricsWriter, evaluation_metrics, step_metrics
from trm.train.optim import EMA, AdamATan2, lr_at, sign_sgd_embedding_step
from trm.train.resume import (
    Progress,
    kept_auto_choices,
    newest_readable_state,
    prepare_run_dir,
    restore_training_state,
    training_state,
    way_back,
)
from trm.train.signals import TrainingInterrupted, stop_on_signals


class TrainingDiverged(TRMError):
    """The loss or the training state became NaN or infinite."""


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> None:
        self.config = config
        self.run_dir = run_dir
        self.show_progress = progress
        self.device = pick_device(config.device)
        self.dist = tdist.init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        if self.device.type == "cpu" and config.reuse_cpu_memory:
            reuse_freed_memory()
        if config.deterministic:
            # cuBLAS is deterministic only with a fixed workspace; it reads this when its handle is made
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)

        found = newest_readable_state(run_dir, self.dist.is_main) if resume else None
        kept = kept_auto_choices(found, config, self.device)  # a resumed run computes as it did

        self.train_split = read_dataset(config.data.path, "train")
        self.has_test_split = (Path(config.data.path) / "test").is_dir()
        meta = self.train_split.metadata
        model_config = config.model.model_copy(
            update=dict(
                vocab_size=meta.vocab_size,
                seq_len=meta.seq_len,
                num_puzzle_identifiers=meta.num_puzzle_identifiers,
                # checkpoints record the dtype the run trained in, not "auto"
                forward_dtype=kept.get("forward_dtype")
                or resolve_forward_dtype(config.model.forward_dtype, self.device),
            )
        )
        if config.model.forward_dtype == "auto" and self.dist.is_main:
            if "forward_dtype" in kept:
                how = "as chosen when the run started"
            else:
                how = f"{'native' if native_bfloat16(self.device) else 'no native'} bfloat16 matmuls on {self.device}"
            print(f"forward_dtype auto: {model_config.forward_dtype} ({how})")
        if "backend" in kept:
            backend = get_backend(kept["backend"])
            why = f"backend {backend.name} (auto: as chosen when the run started)"
        else:
            backend, why = choose_backend(
                config.backend,
                model_config,
                config.global_batch_size // self.dist.world_size,
                self.device,
                getattr(torch, model_config.forward_dtype),
            )
        if config.backend == "auto" and self.dist.enabled:  # timed on each rank: all compute as rank 0 chose
            name = tdist.rank_0s(backend.name)
            if name != backend.name:
                backend, why = get_backend(name), f"backend {name} (auto: as rank 0 chose)"
        # what "auto" chose, saved with every checkpoint (`training_state`)
        self.auto_choices = {
            "device": self.device.type,
            **({"forward_dtype": model_config.forward_dtype} if config.model.forward_dtype == "auto" else {}),
            **({"backend": backend.name} if config.backend == "auto" else {}),
        }
        if self.dist.is_main:
            print(why)
        torch.manual_seed(config.seed)  # identical initial weights on every rank, broadcast anyway
        self.model = TRM(model_config, backend).to(self.device)
        # A resumed run takes its weights from its checkpoint; one killed before its first starts over.
        if config.init_from is not None and found is None:
            state = initial_weights(
                config.init_from, model_config, config.init_widen, config.init_widen_noise, config.seed
            )
            load_weights(self.model, state, f"init_from {config.init_from}")
        if self.dist.enabled:
            tdist.broadcast_weights(self.model)
        if config.compile:
            self.model.compile_networks()

        opt_cls = AdamATan2 if config.optimizer == "adam_atan2" else torch.optim.AdamW
        self.optimizer = opt_cls(
            self.model.parameters(), lr=0.0, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
        )
        self.ema = EMA(self.model, config.ema_rate) if config.ema else None
        self.sampler = TrainSampler(
            self.train_split,
            config.global_batch_size,
            seed=config.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            epochs_per_iter=config.eval_interval_epochs or 1,
        )
        self.total_steps, self.eval_interval = config.schedule(self.train_split.metadata)
        self.progress = Progress()
        self.carry: Carry | None = None
        self.resumed = resume
        self._signal: int | None = None  # set by SIGINT or SIGTERM: save and stop at the end of the step
        # Each rank draws its own exploration noise.
        torch.manual_seed(config.seed + self.dist.rank)
        if resume:
            restore_training_state(self, found)
        self.eval_model = copy.deepcopy(self.model)
        self.writer = MetricsWriter(run_dir, config, self.dist.is_main)

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
        loss, metrics = act_loss(out, self.carry, cfg.model.loss, cfg.answer_loss_from_step)
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
            sign_sgd_embedding_step(
                model.puzzle_emb.weight,
                model.puzzle_emb.rows.grad,
                model.puzzle_emb.ids,
                emb_lr,
                cfg.puzzle_emb_weight_decay,
            )
            model.puzzle_emb.rows = model.puzzle_emb.ids = None
        if self.ema is not None:
            self.ema.update(model)
        self.progress.step = step

        values = tdist.all_reduce_sum(torch.stack([value.double() for value in metrics.values()])).tolist()
        summed = dict(zip(metrics, values))
        total_loss = summed["lm_loss"] + 0.5 * summed["q_halt_loss"]
        if not math.isfinite(total_loss):
            raise TrainingDiverged(
                f"the loss became {total_loss} at step {step}; stopping. {way_back(self.run_dir, self.config.lr)}"
            )
        return step_metrics(summed, cfg.global_batch_size, lr)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> dict[str, float]:
        """The test split with the EMA weights, as `trm eval` evaluates a checkpoint (trm.eval):
        every sample runs N_sup steps, the reference's evaluation. The processes split the
        batches and sum their counts."""
        config = self.config
        report = evaluate(
            self._ema_model(),
            config.data.path,
            split="test",
            limit=config.data.eval_limit,
            batch_size=config.eval_batch_size or config.global_batch_size,
            progress=False,
            arc_voting=False,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        return evaluation_metrics(report)

    # ------------------------------------------------------------------ checkpoints

    def save(self, eval_metrics: dict[str, float] | None) -> None:
        state = training_state(self)  # a collective when distributed: every rank takes part
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
                f"still finite; nothing was saved at this step. {way_back(self.run_dir, self.config.lr)}"
            )

    def _any_rank(self, *flags: bool) -> list[bool]:
        """Each flag raised on any process: every process must take the same branch."""
        if not self.dist.enabled:
            return list(flags)
        votes = tdist.all_reduce_sum(torch.tensor(flags, dtype=torch.float32, device=self.device))
        return [v > 0 for v in votes.tolist()]

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
        bar = tqdm(
            total=self.total_steps,
            initial=self.progress.step,
            disable=not (self.dist.is_main and self.show_progress),
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        window_start, window_steps = time.perf_counter(), 0
        last_save = time.monotonic()
        with stop_on_signals(self._ask_to_stop, self.dist.is_main), contextlib.ExitStack() as cleanup:
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
                    bar.set_postfix_str(
                        f"loss {metrics['train/loss']:.3f} exact {metrics['train/exact_accuracy']:.3f}"
                        f" {rate:.0f} ex*steps/s"
                    )
                    window_start, window_steps = time.perf_counter(), 0
                stop, save_due = self._any_rank(self._signal is not None, time.monotonic() - last_save >= save_seconds)
                evaluate_now = self.has_test_split and (step % eval_every == 0 or done)
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
                    raise TrainingInterrupted(
                        signum,
                        (
                            f"stopped by {signal.Signals(signum).name} at step {step}; saved {saved}. "
                            f"Resume with: trm train --resume {self.run_dir}"
                        ),
                    )
        return last_eval

    def _ask_to_stop(self, signum: int) -> None:
        self._signal = signum

    def _evaluate_and_keep_best(self, bar: tqdm) -> dict[str, float]:
        step = self.progress.step
        result = self.evaluate()
        result["train_seconds"] = self.progress.train_seconds
        self.writer.write(step, result)
        if self.dist.is_main:
            minutes = self.progress.train_seconds / 60
            bar.write(
                f"step {step}: test exact {result['test/exact_accuracy']:.4f}, "
                f"token {result['test/accuracy']:.4f} ({minutes:.1f} min of training)"
            )
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


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> dict[str, float]:
    """Run (or resume) training as configured; returns the last test metrics. `progress=False`
    hides the progress bar (metrics.jsonl and the printed lines are unchanged).

    Nothing is written to the run directory before the config is validated, the dataset is
    readable, the directory is locked against a second run, and the checkpoint resumed from
    (if any) fits the config. Only the first process holds the lock and writes."""
    run_dir = config.resolved_run_dir
    read_dataset(config.data.path, "train")  # memory-mapped: a cheap check before touching run_dir
    main = int(os.environ.get("RANK", "0")) == 0
    clean = False
    try:
        with run_lock(run_dir) if main else contextlib.nullcontext():
            if main:
                prepare_run_dir(run_dir, resume)
            trainer = Trainer(config, run_dir, resume=resume, progress=progress)
            if main:
                atomic_write_text(run_dir / "config.yaml", dump_config(config))
            result = trainer.run()
            clean = True
            return result
    finally:
        tdist.shutdown(clean)
