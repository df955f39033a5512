"""The LightningModule: only the step logic (loss in ``flow``, masks in ``masks``, EMA for evaluation)."""

from __future__ import annotations

import copy
import math

import lightning as L
import torch

from ysocensus.model.config import DEFAULTS
from ysocensus.model.flow import FlowConfig, flow_matching_loss
from ysocensus.model.masks import MaskMix, posterior_states, sample_condition_states
from ysocensus.model.network import FlowTransformer, NetworkConfig


class FlowModule(L.LightningModule):
    """Trains a ``FlowTransformer``; validation and sampling use the EMA copy (``self.ema``)."""

    def __init__(self, network: dict, flow: dict, masks: dict, optim: dict, guidance=None, anchors=None):
        super().__init__()
        self.save_hyperparameters(ignore=["guidance", "anchors"])
        self.net = FlowTransformer(NetworkConfig(**network), anchor_inputs=anchors is not None)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.flow_cfg = FlowConfig(**flow)
        self.mix = MaskMix(**masks)
        self.optim = {**DEFAULTS["optim"], **dict(optim)}  # + total_steps and seed from the trainer
        self.guidance = guidance
        self.anchors = anchors  # anchors.MeasurementAnchors or None
        self._gen = None

    def _generator(self):
        if self._gen is None:
            self._gen = torch.Generator(device="cpu").manual_seed(int(self.optim.get("seed", 0)) + self.global_rank)
        return self._gen

    def training_step(self, batch, batch_idx):
        searched = batch.get("searched")
        state = sample_condition_states(batch["measured"].cpu(), self.mix, self._generator(),
                                        None if searched is None else searched.cpu()).to(self.device)
        out = flow_matching_loss(self.net, batch, state, self.flow_cfg, None, self.guidance, self.anchors)
        n = batch["values"].shape[0]
        self.log("train/loss", out.loss, prog_bar=True, batch_size=n)
        self.log("train/fm", out.fm, batch_size=n)
        if out.guidance is not None:
            self.log("train/guidance", out.guidance, batch_size=n)
        if out.affine is not None:
            self.log("train/affine_nll", out.affine, batch_size=n)
        if out.posterior_field is not None:
            self.log("train/posterior_field", out.posterior_field, batch_size=n)
        return out.loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        decay = float(self.optim["ema_decay"])
        # warm-up of the decay so that early validation is not dominated by the random init
        decay = min(decay, (1 + self.global_step) / (10 + self.global_step))
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(self.ema.buffers(), self.net.buffers()):
                be.copy_(b)

    def validation_step(self, batch, batch_idx):
        # posterior masks only: the loss that inference will see; fixed noise for comparability
        g = torch.Generator(device="cpu").manual_seed(1000 + batch_idx)
        state = posterior_states(batch["measured"], searched=batch.get("searched"))
        out = flow_matching_loss(self.ema, batch, state, self.flow_cfg, g, None, self.anchors)
        self.log("val/loss", out.fm, prog_bar=True, batch_size=batch["values"].shape[0], sync_dist=True)
        if out.posterior_field is not None:
            self.log("val/posterior_field", out.posterior_field, batch_size=batch["values"].shape[0], sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=float(self.optim["lr"]),
                                weight_decay=float(self.optim["weight_decay"]))
        total = max(1, int(self.optim.get("total_steps", 10_000)))
        warm = max(1, int(0.02 * total))

        def lr_lambda(step):
            if step < warm:
                return (step + 1) / warm
            p = min(1.0, (step - warm) / max(1, total - warm))
            return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
