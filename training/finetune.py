"""Contrastive fine-tuning of the e5 encoder on a few-shot head's labelled texts.

With 8–32 examples per class, a linear head over frozen sentence embeddings is limited by the
embeddings themselves: complaints about different parts of a car sit close together because
they share a topic. Fine-tuning moves them apart. The loss is supervised contrastive (Khosla et
al., 2020) within each batch: for every text, the other texts of its class in the batch are the
positives and every other text the negatives, at temperature ``params.temperature``, over the
L2-normalised mean-pooled embeddings the service uses (``query:`` prompt). Each batch is read
``params.views`` times with dropout on, and the views are contrasted together: a text's other
view is always one of its positives (as in SimCSE, Gao et al., 2021), so every anchor has a
positive even when its class has no other text in the batch, and dropout noise keeps ~300 texts
from being memorised as quickly. The word-embedding
matrix stays frozen (most of the model, and what a few hundred texts cannot teach), so a bundle
stores only the rest (:mod:`triage.encoder.finetuned`).

Settings (``FineTuneParams``; measured on 车质网's 19 coarse categories, 16 per class, 5 draws):
AdamW at 3e-5, batches of 32 read twice, 5 epochs, texts read to 128 tokens during training (256
was slower and no better), at most ``max_steps`` optimiser steps so a larger few-shot set still
trains in about 10 minutes on 2 cores. Chosen on draws from the training pool scored on a held-out
part of it (macro-F1, two draws): one view 0.330 / 0.334, two views 0.343 / 0.350; two views for 3
epochs (the same compute as one view for 5) 0.331; one view for 10 epochs 0.315; temperature 0.1
0.329. On the benchmark's five draws (``python -m benchmarks.retrain``) two views gave 0.345 against
0.334 for one at 16 per class, but 0.297 against 0.311 at 8 per class (``views`` = 1 for ~150
texts). Deterministic under ``seed`` on one machine (torch's CPU kernels).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from triage.config import FineTuneParams
from triage.encoder.convert import PROMPTS
from triage.encoder.finetuned import FROZEN
from triage.errors import DataError


def supervised_contrastive_loss(z, y, temperature: float):
    """Mean over anchors with at least one positive of −mean log p(positive | anchor), ``z``
    unit rows (torch), ``y`` integer labels; ``None`` when the batch has no positive pair."""
    import torch

    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    logits = (z @ z.T / temperature).masked_fill(eye, -1e9)   # a text is not its own pair
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~eye
    count = positives.sum(1)
    if not bool((count > 0).any()):
        return None
    per_anchor = -(log_p.masked_fill(~positives, 0.0).sum(1)[count > 0] / count[count > 0])
    return per_anchor.mean()


def fine_tune_encoder(model_dir: Path, texts: Sequence[str], labels: Sequence[str], params: FineTuneParams,
                      seed: int, out: Path, step: Callable[[str], None] = lambda _m: None) -> dict:
    """Fine-tune the e5 model in ``model_dir`` on ``texts`` labelled ``labels`` and write the
    trained weights (all but the frozen word embeddings) to ``out`` (safetensors). Returns what
    the bundle's manifest records about the run."""
    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer

    texts, labels = list(texts), [str(v) for v in labels]
    if len(texts) != len(labels):
        raise DataError("FINETUNE_SHAPE", f"fine-tuning got {len(texts)} texts but {len(labels)} labels")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError("FINETUNE_ONE_CLASS", f"fine-tuning needs at least 2 classes, got {classes}")
    torch.manual_seed(seed)
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = params.max_tokens
    bert = model[0].auto_model
    trainable = []
    for name, p in bert.named_parameters():
        p.requires_grad_(FROZEN not in name)
        if p.requires_grad:
            trainable.append(p)
    optimiser = torch.optim.AdamW(trainable, lr=params.learning_rate)
    prompted = [PROMPTS["query"] + t for t in texts]
    y = torch.tensor([classes.index(v) for v in labels])
    per_epoch = -(-len(texts) // params.batch_size)
    total = min(params.epochs * per_epoch, params.max_steps)
    step(f"fine-tuning the encoder on {len(texts)} texts ({len(classes)} classes): {total} steps of "
         f"{params.batch_size} × {params.views} views, {params.max_tokens} tokens")
    model.train()
    t0, done, losses = time.perf_counter(), 0, []
    for epoch in range(params.epochs):
        order = np.random.RandomState(seed + epoch).permutation(len(texts))
        epoch_losses = []
        for start in range(0, len(order), params.batch_size):
            if done >= total:
                break
            batch = order[start:start + params.batch_size]
            features = model.tokenize([prompted[i] for i in batch])
            # each view is a fresh forward pass (dropout differs); the model may alter the
            # features dict it is given, hence the copy
            z = torch.cat([model(dict(features))["sentence_embedding"] for _ in range(params.views)])
            z = torch.nn.functional.normalize(z, dim=1)
            loss = supervised_contrastive_loss(z, y[torch.from_numpy(batch)].repeat(params.views), params.temperature)
            done += 1
            if loss is None:             # one view, and no two texts of one class in this batch
                continue
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            epoch_losses.append(loss.item())
        if epoch_losses:
            losses.append(round(float(np.mean(epoch_losses)), 4))
            step(f"fine-tuning epoch {epoch + 1}: loss {losses[-1]:.3f}, {time.perf_counter() - t0:.0f}s")
        if done >= total:
            break
    model.eval()
    state = {k: v.detach().contiguous() for k, v in bert.state_dict().items() if FROZEN not in k}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out))
    return {"texts": len(texts), "classes": len(classes), "steps": done, "epoch_losses": losses,
            "seconds": round(time.perf_counter() - t0, 1), "params": params.model_dump(mode="json")}
