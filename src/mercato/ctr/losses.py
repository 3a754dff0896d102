"""Loss helpers for multi-task CTR models: gradient surgery (PCGrad) for :meth:`CTRModel.backward_losses`.

PCGrad (Yu et al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning", Alg. 1): for every task ``i``
and every other task ``j`` whose gradient conflicts with it (``g_i . g_j < 0``), project ``g_i`` onto the
normal plane of ``g_j``: ``g_i <- g_i - (g_i . g_j / |g_j|^2) g_j``; the update is the sum of the projected
gradients. The paper visits the other tasks in a random order; here they are visited in the order of the
loss dict (deterministic, so resume stays bit-exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["pcgrad", "pcgrad_backward"]


def pcgrad(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum of the PCGrad-projected task gradients (Alg. 1 of Yu et al., 2020).

    Args:
        grads: one flat gradient ``(P,)`` per task.

    Returns:
        ``(P,)``: ``sum_i g_i'`` where ``g_i'`` is ``g_i`` projected away from every ``g_j`` it conflicts with
        (projections use the original ``g_j``, applied one after another in task order).
    """
    if not grads:
        raise ValueError("pcgrad needs at least one task gradient")
    out = torch.zeros_like(grads[0])
    for i, g_i in enumerate(grads):
        g = g_i.clone()
        for j, g_j in enumerate(grads):
            if j == i:
                continue
            dot = torch.dot(g, g_j)
            norm2 = torch.dot(g_j, g_j)
            if dot < 0 and norm2 > 0:
                g = g - dot / norm2 * g_j  # (P,)
        out += g
    return out


def pcgrad_backward(losses: Mapping[str, torch.Tensor], params: Sequence[torch.nn.Parameter]) -> None:
    """Set ``p.grad`` of ``params`` to the PCGrad combination of the gradients of each loss term.

    Terms that do not depend on any parameter (e.g. a zero auxiliary loss) are skipped; parameters a term does
    not reach get a zero gradient from it. Use it as a model's ``backward_losses``::

        def backward_losses(self, losses):
            pcgrad_backward(losses, [p for p in self.parameters() if p.requires_grad])
    """
    params = list(params)
    flat: list[torch.Tensor] = []
    for loss in losses.values():
        if not loss.requires_grad:
            continue
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        flat.append(
            torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])
        )
    if not flat:
        return
    combined = pcgrad(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = combined[offset : offset + n].view_as(p).clone()
        offset += n
