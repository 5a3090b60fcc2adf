"""The exact simulator's state-evolution program: a qubit-layout plan and one autograd kernel that runs it.

A batch of states is stored in one of two memory layouts, chosen per gate:

- "BN", (B, 2^n): each row one state. A gate matrix that differs per row (it depends on the inputs) is applied on
  the top (most significant) k bits of the index as one batched matmul (B, 2^k, 2^k) @ (B, 2^k, 2^(n-k)); a gate
  lower in the index would need copies or skinny matmuls (measured 2-3x slower), so the planner first relabels the
  qubits to put the gate's qubits on top.
- "NB", (2^n, B): each column one state. A gate matrix shared by the whole batch (it depends on weights only) is
  applied on any contiguous run of index bits as (hi, 2^k, 2^k) @ (hi, 2^k, low * B): the batch sits in the
  columns, so the matmul is wide whatever the position, and a layer of weight gates needs no relabelling at all.

The planner tracks which circuit qubit sits at which bit of the stored index (the "physical" order). A relabelling
is an index gather, and consecutive gathers compose into one: CX chains (permutations) and relayouts cost a single
gather together. Switching layout is one transpose copy, made only where the kind of gate changes.

Why a hand-written backward: autograd through the same ops records a dozen view / transpose / expand nodes per gate
and dominates the time at QNN sizes. The backward of a program is short: a gather with the inverse index, a
conjugated diagonal, a transpose, or two matmuls (the state gradient m^H G and the matrix gradient G s^H) per matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable


class BufferPool:
    """State-sized buffers reused across evaluations.

    Why: a run writes one 2^n x B state per step; a fresh allocation of that size is new memory from the kernel,
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


@dataclass
class Program:
    """Steps on a batch of states; it starts and ends in layout BN and Qiskit's order (qubit q = bit q).

    Steps (``nb``: the step runs in layout NB):

    - ``("gather", src, inverse, nb)``: new[i] = old[src[i]] along the index;
    - ``("diag", vector, nb)``: a diagonal gate (the vector shaped to broadcast in its layout);
    - ``("layout", nb)``: transpose into layout NB (``nb`` true) or back to BN;
    - ``("mat", j, k, nb, hi)``: matrix j of the run on k index bits: the top k bits in BN; in NB the k bits below
      the top log2(hi) bits. A uniformly controlled gate in layout NB is the same step with k = 1 and hi = 2^c: its
      target bit below its c control bits on top, one matrix per control state.
    - ``("ucr", j, nb)``: a uniformly controlled gate with a matrix per row: its target bit on top, its controls
      below it; the state viewed as (B, 2, L) in BN, (2, L) in NB (the (re, im) view when the matrices are real and
      the state complex), and matrix j planar, (B or 1, 2, 2, L) in BN, (2, 2, L) in NB: entry [.., r, c, l] acts on
      element l of half c, repeated over what l spans besides the control state (the bits below the controls, the
      batch in NB, re / im), so the step is two elementwise passes (see :meth:`Planner.uniform`).

    ``mats[j]`` is the compiled op that yields matrix j, its qubits listed least significant local bit first.
    """

    num_qubits: int
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    mats: list[Any] = field(default_factory=list)
    pool: BufferPool = field(default_factory=BufferPool)
    shapes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


class Planner:
    """Builds a :class:`Program` from ops in circuit order, tracking the physical order of the qubits and the layout.

    Args:
        num_qubits: n.
        shared: Whether an op runs in layout NB (its matrix must then be the same for the whole batch).
    """

    def __init__(self, num_qubits: int, shared: Callable[[Any], bool]) -> None:
        self.n = num_qubits
        self.order = list(range(num_qubits - 1, -1, -1))  # circuit qubit at each position, most significant first
        self.nb = False
        self._shared = shared
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
            steps.append(("gather", src, np.argsort(src), self.nb))

    def _layout(self, nb: bool) -> None:
        if nb != self.nb:
            self.program.steps.append(("layout", nb))
            self.nb = nb

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
        if steps and steps[-1][0] == "diag" and steps[-1][2] == self.nb:
            steps[-1] = ("diag", steps[-1][1] * vec, self.nb)
        else:
            steps.append(("diag", vec, self.nb))

    def _place(self, qubits_msb_first: list[int], anywhere: bool) -> int:
        """Make the qubits consecutive positions in this order (on top unless ``anywhere``); return the first."""
        k = len(qubits_msb_first)
        if anywhere:
            for pos in range(self.n - k + 1):
                if self.order[pos:pos + k] == qubits_msb_first:
                    return pos
        if self.order[:k] != qubits_msb_first:
            self.relayout(qubits_msb_first + [q for q in self.order if q not in qubits_msb_first])
        return 0

    def _emit(self, op: Any, pos: int) -> None:
        k = len(op.qubits)
        self.program.steps.append(("mat", len(self.program.mats), k, self.nb, 1 << pos))
        self.program.mats.append(op)

    def matrix(self, op: Any) -> None:
        """A gate matrix on ``op.qubits`` (local bit j is ``op.qubits[j]``, Qiskit's convention)."""
        self._layout(self._shared(op))
        self._emit(op, self._place(list(reversed(op.qubits)), anywhere=self.nb))

    def uniform(self, op: Any) -> None:
        """A uniformly controlled single-qubit gate on ``op.qubits`` = (controls..., target): one 2x2 matrix per
        basis state i of the controls (control j = bit j of i), 2^k matrices per row (or shared).

        A gate per row runs in the current layout, its target on top and its controls below it, most significant
        last control first: the state viewed as (.., 2, L) is then new[r] = m[r, 0] * old[0] + m[r, 1] * old[1]
        with planar matrices (.., 2, 2, L), two elementwise passes over contiguous rows, forward and backward alike,
        and in either layout (so a QFL circuit, whose other gates are shared by the batch, never transposes its
        state). A batch-wide gate runs in layout NB, the controls on top and the target below them:
        (2^k, 2, rest * B) is one batched matmul with the (2^k, 2, 2) matrices. Why not 2^k RY and CX gates: at the
        QFL encoding's 2^k = 256 that is 512 passes over the state instead of one. Why not batched matmuls per row:
        B * 2^k products of 2 x 2 matrices measured about 7x slower than the two passes (420 against 57 us, one
        thread, 32 x 256 real branches at 9 qubits).
        """
        *controls, target = op.qubits
        j = len(self.program.mats)
        if self._shared(op):
            self._layout(True)
            self._place([*reversed(controls), target], anywhere=False)
            self.program.steps.append(("mat", j, 1, True, 1 << len(controls)))
        else:
            self._place([target, *reversed(controls)], anywhere=False)
            self.program.steps.append(("ucr", j, self.nb))
        self.program.mats.append(op)

    def layer(self, factors: dict[int, list], window: int, make_block: Callable[[tuple[int, ...]], Any]) -> None:
        """Single-qubit gates (they commute), per qubit, fused into blocks of at most ``window`` qubits.

        Qubits whose gates are shared by the batch run in layout NB, in blocks of consecutive positions wherever
        they are; the others in layout BN, brought to the top in their current relative order (no gather if they
        already are), split into near-equal windows, each rotated to the top in turn. ``make_block(qubits)``
        (least significant first) returns the op of one window.
        """
        kinds = {q: self._shared(make_block((q,))) for q in factors}
        groups = [[q for q in self.order if q in factors and kinds[q] == nb] for nb in (True, False)]
        for nb in sorted((True, False), key=lambda v: v != self.nb):  # the current layout first
            qubits = groups[0 if nb else 1]
            if not qubits:
                continue
            self._layout(nb)
            if nb:
                runs: list[list[int]] = []  # consecutive positions
                for q in qubits:
                    if runs and self.order.index(q) == self.order.index(runs[-1][-1]) + 1:
                        runs[-1].append(q)
                    else:
                        runs.append([q])
                for run in runs:
                    start = self.order.index(run[0])
                    for offset, size in _chunks(len(run), window):
                        self._emit(make_block(tuple(reversed(run[offset:offset + size]))), start + offset)
                continue
            self._place(qubits, anywhere=False)
            prev = 0
            for _, size in _chunks(len(qubits), window):
                if prev:
                    self.relayout(self.order[prev:] + self.order[:prev])
                self._emit(make_block(tuple(reversed(self.order[:size]))), 0)
                prev = size

    def finish(self) -> Program:
        """Return the program, ending in layout BN and Qiskit's qubit order."""
        self.relayout(list(range(self.n - 1, -1, -1)))
        self._layout(False)
        steps = []
        n = 1 << self.n
        for step in self.program.steps:  # tensors in their run-time form, once, at compile time
            if step[0] == "gather":
                step = ("gather", torch.as_tensor(step[1]), torch.as_tensor(step[2]), step[3])
            elif step[0] == "diag" and step[2]:
                step = ("diag", step[1].reshape(n, 1), True)
            steps.append(step)
        self.program.steps = steps
        return self.program


def _chunks(length: int, window: int) -> list[tuple[int, int]]:
    """(offset, size) of near-equal chunks of at most ``window``."""
    count = -(-length // window)
    sizes = [length // count + (i < length % count) for i in range(count)]
    return [(sum(sizes[:i]), s) for i, s in enumerate(sizes)]


#: States up to this many amplitudes (batch x 2^n) run with one intra-op thread; see :func:`_threads`.
PARALLEL_FROM = 1 << 16


@contextmanager
def _threads(numel: int) -> Iterator[None]:
    """One torch intra-op thread for small states, the caller's setting otherwise.

    Why: at QNN sizes (32 x 2^10 amplitudes) a second thread gains nothing (measured 8.7 ms with one thread, 9.5 ms
    with two, on the reference model with reps=3), and the two-thread path is fragile: after a multi-threaded Aer
    run in the same process, torch's two-thread bmm measured 4x slower (two OpenMP runtimes on two cores), while the
    one-thread path did not change. From 14 qubits x 8 two threads win (21.8 vs 32.7 ms), so large states keep them.
    """
    before = torch.get_num_threads()
    if before == 1 or numel >= PARALLEL_FROM:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batched(mat: torch.Tensor, count: int) -> torch.Tensor:
    # a shared (d, d) matrix as a stride-0 batch: bmm takes it without a copy (matmul's broadcasting copies the
    # state instead, measured 2x slower)
    return mat.expand(count, *mat.shape) if mat.ndim == 2 else mat


def _step(step: tuple, state: torch.Tensor, mats: Any, out: torch.Tensor, backward: bool = False) -> torch.Tensor:
    """One program step from ``state`` into ``out`` (the adjoint step when ``backward``)."""
    kind = step[0]
    if kind == "gather":
        index = step[2] if backward else step[1]
        if step[3]:
            return torch.index_select(state, 0, index, out=out)
        # torch.gather with an expanded index: about 3x faster than state[:, index] for (32, 1024) states
        return torch.gather(state, 1, index.expand(state.shape[0], -1), out=out)
    if kind == "diag":
        return torch.mul(state, step[1].conj() if backward else step[1], out=out)
    if kind == "layout":
        return out.copy_(state.t())
    if kind == "ucr":
        m, src, dst = mats[step[1]], state, out
        if state.is_complex() and not m.is_complex():  # real matrices act on (re, im) alike
            src, dst = torch.view_as_real(state), torch.view_as_real(out)
        lead = () if step[2] else (src.shape[0],)
        s, o = src.view(*lead, 2, -1), dst.view(*lead, 2, -1)
        if backward:  # the adjoint: m^H, entry [r, c] = conj(m[c, r])
            m = m.transpose(-3, -2).conj() if m.is_complex() else m.transpose(-3, -2)
        torch.mul(m.select(-2, 0), s.narrow(-2, 0, 1), out=o)
        o.addcmul_(m.select(-2, 1), s.narrow(-2, 1, 1))
        return out
    m, d = mats[step[1]], 1 << step[2]
    if backward:
        m = m.mH
    if m.ndim == 2 and not step[3] and state.shape[-1] == d:  # one matrix on every qubit of every row: one mm
        return torch.mm(state, m.t() if m.dtype == state.dtype else m.t().to(state.dtype), out=out)
    count = step[4] if step[3] else state.shape[0] * step[4]
    src, dst = state, out
    if state.is_complex() and not m.is_complex():  # a real matrix acts on (re, im) alike: a real bmm, 4x less work
        src, dst = torch.view_as_real(state), torch.view_as_real(out)
    torch.bmm(_batched(m, count), src.view(count, d, -1), out=dst.view(count, d, -1))
    return out


def _matrix_grad(step: tuple, grad: torch.Tensor, state: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """Gradient of a "mat" or "ucr" step's matrix: G s^H summed over what the matrix is shared by."""
    if step[0] == "ucr":  # planar: g[.., r, c, l] = grad[.., r, l] conj(state[.., c, l])
        if grad.is_complex() and not mat.is_complex():
            grad, state = torch.view_as_real(grad), torch.view_as_real(state)
        lead = () if step[2] else (grad.shape[0],)
        g2, s2 = grad.reshape(*lead, 2, 1, -1), state.reshape(*lead, 1, 2, -1)
        g = g2 * (s2.conj() if s2.is_complex() else s2)
        return g.sum(0, keepdim=True) if lead and mat.shape[0] == 1 and g.shape[0] > 1 else g
    d = 1 << step[2]
    if mat.ndim == 2 and not step[3] and grad.shape[-1] == d:  # the one-mm case of _step: sum_b g_b s_b^H
        g = torch.mm(grad.t(), state.conj())
        return g if mat.is_complex() else g.real
    count = step[4] if step[3] else grad.shape[0] * step[4]
    if grad.is_complex() and not mat.is_complex():  # Re(g s^H) of the real bmm of _step
        g = torch.bmm(torch.view_as_real(grad).view(count, d, -1), torch.view_as_real(state).view(count, d, -1).mT)
        return g.sum(0) if mat.ndim == 2 else g
    g = torch.bmm(grad.view(count, d, -1), state.view(count, d, -1).mH)  # (count, d, d)
    return g.sum(0) if mat.ndim == 2 else g


def _free_scratch(scratch: list[torch.Tensor], current: torch.Tensor) -> torch.Tensor:
    """The one of two ping-pong buffers that does not hold ``current``."""
    return scratch[1] if current.data_ptr() == scratch[0].data_ptr() else scratch[0]


def _shapes(program: Program, bsz: int) -> list[tuple[int, int]]:
    """Shape of the state after every step (computed once per batch size)."""
    if bsz not in program.shapes:
        n, nb, out = 1 << program.num_qubits, False, []
        for step in program.steps:
            if step[0] == "layout":
                nb = step[1]
            out.append((n, bsz) if nb else (bsz, n))
        program.shapes[bsz] = out
    return program.shapes[bsz]


class Evolve(torch.autograd.Function):
    """state (B, 2^n) -> program(state) with gate matrices ``mats`` (each (B, d, d) or shared (d, d));
    differentiable with respect to the state and every matrix. Intermediate states live in buffers of the
    program's pool; the result and the gradients are fresh tensors."""

    @staticmethod
    def forward(ctx, program: Program, state: torch.Tensor, *mats: torch.Tensor):  # type: ignore[override]
        with _threads(state.numel()):
            return Evolve._forward(ctx, program, state, *mats)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        with _threads(grad.numel()):
            return Evolve._backward(ctx, grad)

    @staticmethod
    def _forward(ctx, program: Program, state: torch.Tensor, *mats: torch.Tensor):  # type: ignore[no-untyped-def]
        keep = any(ctx.needs_input_grad)
        steps, pool, dtype = program.steps, program.pool, state.dtype
        if not steps:
            return state.clone()
        size, start = state.numel(), tuple(state.shape)
        scratch = [pool.take((size,), dtype), pool.take((size,), dtype)]
        # the input of every matrix step is kept for the backward pass
        work = pool.take((len(program.mats), size), dtype) if keep and program.mats else None
        inputs: list[torch.Tensor] = []
        shapes = _shapes(program, state.shape[0])
        k = 0
        for i, step in enumerate(steps):
            if step[0] in ("mat", "ucr") and keep:
                inputs.append(state)
            if i == len(steps) - 1:
                out = torch.empty(shapes[i], dtype=dtype)
            elif keep and steps[i + 1][0] in ("mat", "ucr"):
                out, k = work[k].view(shapes[i]), k + 1  # type: ignore[index]
            else:
                out = _free_scratch(scratch, state).view(shapes[i])
            state = _step(step, state, mats, out)
        for buf in scratch:
            pool.give(buf)
        ctx.program, ctx.shapes, ctx.start = program, shapes, start
        if keep:
            # the node keeps the workspace until its graph is freed; then the lease returns it to the pool
            ctx.inputs, ctx.lease = inputs, Lease(pool, work) if work is not None else None
            ctx.save_for_backward(*mats)
        return state

    @staticmethod
    def _backward(ctx, grad: torch.Tensor):  # type: ignore[no-untyped-def]
        program: Program = ctx.program
        mats = ctx.saved_tensors
        wants = ctx.needs_input_grad[2:]
        grads: list[torch.Tensor | None] = [None] * len(mats)
        grad = grad.contiguous()
        dtype = grad.dtype
        scratch = [program.pool.take((grad.numel(),), dtype), program.pool.take((grad.numel(),), dtype)]
        steps, k = program.steps, len(ctx.inputs)
        before = [ctx.start, *ctx.shapes[:-1]]  # the state's shape before each step
        for i in range(len(steps) - 1, -1, -1):
            step = steps[i]
            if step[0] in ("mat", "ucr"):
                k -= 1
                if wants[step[1]]:
                    grads[step[1]] = _matrix_grad(step, grad, ctx.inputs[k], mats[step[1]])
            if i == 0:
                if not ctx.needs_input_grad[1]:
                    break
                out = torch.empty(before[i], dtype=dtype)
            else:
                out = _free_scratch(scratch, grad).view(before[i])
            grad = _step(step, grad, mats, out, backward=True)
        for buf in scratch:
            program.pool.give(buf)
        return None, grad if ctx.needs_input_grad[1] else None, *grads
