"""The exact simulator's state-evolution program: a qubit-layout plan and one autograd kernel that runs it.

Why a layout: a gate matrix on the top (most significant) k bits of the state index is one well-shaped batched
matmul, (B, 2^k, 2^k) @ (B, 2^k, 2^(n-k)), with no copies. A gate in the middle of the index needs a transpose in
and out (two copies), and one on the bottom bits a skinny matmul that BLAS runs about 3x slower (measured on the
reference model). So the planner keeps track of which circuit qubit sits at which bit of the stored state (the
"physical" order) and, before each matrix, gathers the state so the gate's qubits are on top. A relabelling is an
index gather, and consecutive gathers compose into one: CX chains (permutations) and relayouts cost a single gather
together.

Why a hand-written backward: autograd through the same ops records a dozen view / transpose / expand nodes per gate
and dominates the time at QNN sizes. The backward of a program is short: a gather with the inverse index, a
conjugated diagonal, or two matmuls (the state gradient m^H G and the matrix gradient G s^H) per matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable


@dataclass
class Program:
    """Steps on a state stored in the planned layout; it ends in Qiskit's order (qubit q = bit q).

    Steps: ``("gather", src, inverse)`` (new[:, i] = old[:, src[i]]), ``("diag", vector)``, and ``("mat", j, k)``
    (apply matrix j of the run on the top k bits). ``mats[j]`` is the compiled op that yields matrix j, with its
    qubits listed least significant local bit first.
    """

    num_qubits: int
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    mats: list[Any] = field(default_factory=list)
    pool: BufferPool = field(default_factory=lambda: BufferPool())


class Planner:
    """Builds a :class:`Program` from ops in circuit order, tracking the physical order of the qubits."""

    def __init__(self, num_qubits: int) -> None:
        self.n = num_qubits
        self.order = list(range(num_qubits - 1, -1, -1))  # circuit qubit at each position, most significant first
        self._idx = np.arange(1 << num_qubits)
        self.program = Program(num_qubits)

    def _physical(self, order: list[int]) -> np.ndarray:
        """Physical index of every logical basis state under ``order``."""
        out = np.zeros_like(self._idx)
        for pos, q in enumerate(order):
            out |= ((self._idx >> q) & 1) << (self.n - 1 - pos)
        return out

    def _gather(self, src: np.ndarray) -> None:
        steps = self.program.steps
        if steps and steps[-1][0] == "gather":  # gather after gather: one gather
            src = steps[-1][1][src]
            steps.pop()
        if not np.array_equal(src, self._idx):
            steps.append(("gather", src, np.argsort(src)))

    def relayout(self, order: list[int]) -> None:
        """Store the state in ``order`` from here on."""
        if order == self.order:
            return
        src = np.empty_like(self._idx)
        src[self._physical(order)] = self._physical(self.order)
        self._gather(src)
        self.order = order

    def permutation(self, src_logical: np.ndarray) -> None:
        """A basis permutation given in Qiskit's order: new[i] = old[src_logical[i]]."""
        phys = self._physical(self.order)
        src = np.empty_like(self._idx)
        src[phys] = phys[src_logical]
        self._gather(src)

    def diagonal(self, vector_logical: torch.Tensor) -> None:
        """A diagonal gate given as its full vector in Qiskit's order."""
        vec = torch.empty_like(vector_logical)
        vec[torch.as_tensor(self._physical(self.order))] = vector_logical
        steps = self.program.steps
        if steps and steps[-1][0] == "diag":
            steps[-1] = ("diag", steps[-1][1] * vec)
        else:
            steps.append(("diag", vec))

    def _top(self, qubits_msb_first: list[int]) -> None:
        k = len(qubits_msb_first)
        if self.order[:k] != qubits_msb_first:
            self.relayout(qubits_msb_first + [q for q in self.order if q not in qubits_msb_first])

    def matrix(self, op: Any) -> None:
        """A gate matrix on ``op.qubits`` (local bit j is ``op.qubits[j]``, Qiskit's convention)."""
        self._top(list(reversed(op.qubits)))
        self.program.steps.append(("mat", len(self.program.mats), len(op.qubits)))
        self.program.mats.append(op)

    def layer(self, qubits: set[int], window: int, make_block: Any) -> None:
        """Single-qubit gates on ``qubits`` (they commute), fused into blocks of at most ``window`` qubits.

        The qubits are brought to the top in their current relative order (no gather if they already are), split
        into near-equal windows, and each window is rotated to the top in turn. ``make_block(qubits_lsb_first)``
        returns the op of one window.
        """
        top = [q for q in self.order if q in qubits]
        self._top(top)
        count = -(-len(top) // window)
        sizes = [len(top) // count + (i < len(top) % count) for i in range(count)]
        for i, size in enumerate(sizes):
            if i:
                prev = sizes[i - 1]
                self.relayout(self.order[prev:] + self.order[:prev])
            self.matrix(make_block(tuple(reversed(self.order[:size]))))

    def finish(self) -> Program:
        """Return the program, ending in Qiskit's qubit order."""
        self.relayout(list(range(self.n - 1, -1, -1)))
        steps = []
        for step in self.program.steps:  # index tensors once, at compile time
            if step[0] == "gather":
                step = ("gather", torch.as_tensor(step[1]), torch.as_tensor(step[2]))
            steps.append(step)
        self.program.steps = steps
        return self.program


class BufferPool:
    """State-sized buffers reused across evaluations.

    Why: a run writes one (B, 2^n) state per step; a fresh allocation of that size is new memory from the kernel,
    and its page faults cost more than the arithmetic at QNN sizes (a gather into kept fresh buffers measured about
    5x slower than into a reused one on the reference model). Buffers go back to the pool explicitly (scratch space)
    or when the :class:`Lease` holding them is dropped (an autograd node's workspace, freed with its graph), so a
    retained graph is never overwritten. Buffers above ``limit_bytes`` are not kept.
    """

    def __init__(self, limit_bytes: int = 16 << 20, per_shape: int = 3) -> None:
        self.limit_bytes, self.per_shape = limit_bytes, per_shape
        self._free: dict[tuple, list[torch.Tensor]] = {}

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A buffer of ``shape`` that nobody else uses (contents undefined)."""
        free = self._free.get((shape, dtype))
        return free.pop() if free else torch.empty(shape, dtype=dtype)

    def give(self, buf: torch.Tensor) -> None:
        """Return ``buf``; the caller must not use it afterwards."""
        free = self._free.setdefault((tuple(buf.shape), buf.dtype), [])
        if len(free) < self.per_shape and buf.numel() * buf.element_size() <= self.limit_bytes:
            free.append(buf)


class Lease:
    """Gives its buffer back to the pool when dropped."""

    __slots__ = ("pool", "buf")

    def __init__(self, pool: BufferPool, buf: torch.Tensor) -> None:
        self.pool, self.buf = pool, buf

    def __del__(self) -> None:
        self.pool.give(self.buf)


def _gather(state: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # torch.gather with an expanded index: about 3x faster than state[:, index] for (32, 1024) states
    return torch.gather(state, 1, index.expand(state.shape[0], -1), out=out)


def _batched(mat: torch.Tensor, bsz: int) -> torch.Tensor:
    # a shared (d, d) matrix as a stride-0 batch: bmm takes it without a copy (matmul's broadcasting copies the
    # state instead, measured 2x slower)
    return mat.expand(bsz, *mat.shape) if mat.ndim == 2 else mat


def _step(step: tuple, state: torch.Tensor, mats: Any, out: torch.Tensor, backward: bool = False) -> torch.Tensor:
    """One program step from ``state`` into ``out`` (the adjoint step when ``backward``)."""
    kind, bsz = step[0], state.shape[0]
    if kind == "gather":
        return _gather(state, step[2] if backward else step[1], out)
    if kind == "diag":
        return torch.mul(state, step[1].conj() if backward else step[1], out=out)
    m, d = mats[step[1]], 1 << step[2]
    torch.bmm(_batched(m.mH if backward else m, bsz), state.view(bsz, d, -1), out=out.view(bsz, d, -1))
    return out


class Evolve(torch.autograd.Function):
    """state -> program(state) with gate matrices ``mats`` (each (B, d, d) or shared (d, d)); differentiable with
    respect to the state and every matrix. Intermediate states live in buffers of the program's pool; the result
    and the gradients are fresh tensors."""

    @staticmethod
    def forward(ctx, program: Program, state: torch.Tensor, *mats: torch.Tensor):  # type: ignore[override]
        keep = any(ctx.needs_input_grad)
        steps, shape = program.steps, tuple(state.shape)
        if not steps:
            return state.clone()
        pool = program.pool
        scratch = [pool.take(shape, state.dtype), pool.take(shape, state.dtype)]
        # the input of every matrix step is kept for the backward pass
        work = pool.take((len(program.mats), *shape), state.dtype) if keep and program.mats else None
        inputs: list[torch.Tensor] = []
        k = 0
        for i, step in enumerate(steps):
            if step[0] == "mat" and keep:
                inputs.append(state)
            if i == len(steps) - 1:
                out = torch.empty(shape, dtype=state.dtype)
            elif keep and steps[i + 1][0] == "mat":
                out, k = work[k], k + 1  # type: ignore[index]
            else:
                out = scratch[1] if state is scratch[0] else scratch[0]
            state = _step(step, state, mats, out)
        for buf in scratch:
            pool.give(buf)
        ctx.program = program
        if keep:
            # the node keeps the workspace until its graph is freed; then the lease returns it to the pool
            ctx.inputs, ctx.lease = inputs, Lease(pool, work) if work is not None else None
            ctx.save_for_backward(*mats)
        return state

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        program: Program = ctx.program
        mats = ctx.saved_tensors
        wants = ctx.needs_input_grad[2:]
        grads: list[torch.Tensor | None] = [None] * len(mats)
        grad = grad.contiguous()
        shape = tuple(grad.shape)
        scratch = [program.pool.take(shape, grad.dtype), program.pool.take(shape, grad.dtype)]
        bsz, k = shape[0], len(ctx.inputs)
        steps = program.steps
        for i in range(len(steps) - 1, -1, -1):
            step = steps[i]
            if step[0] == "mat":
                j, d = step[1], 1 << step[2]
                k -= 1
                if wants[j]:
                    gm = torch.bmm(grad.view(bsz, d, -1), ctx.inputs[k].view(bsz, d, -1).mH)  # (B, d, d)
                    grads[j] = gm.sum(0) if mats[j].ndim == 2 else gm
            out = torch.empty(shape, dtype=grad.dtype) if i == 0 else (
                scratch[1] if grad is scratch[0] else scratch[0])
            grad = _step(step, grad, mats, out, backward=True)
        for buf in scratch:
            program.pool.give(buf)
        return None, grad if ctx.needs_input_grad[1] else None, *grads
