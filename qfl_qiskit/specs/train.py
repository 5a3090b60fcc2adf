"""Training specs: data set and split, models (quantum and classical fusion), optimiser, loss, execution.

One file format serves ``qfl train`` and ``qfl compare``: ``[[models]]`` lists the models to train on the same
split (a single ``[model]`` table is accepted too). Every model shares the encoder and head settings of its table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_serializer, model_validator

from qfl_qiskit import limits
from qfl_qiskit.specs.base import NAME_PATTERN, BackendName, Spec, read_toml, validate
from qfl_qiskit.specs.mitigation import MitigationSpec


def _non_finite(value: Any, where: str = "") -> str | None:
    """The key path of the first NaN or infinity inside ``value`` (None when every number is finite)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return where or "(value)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


class DataSpec(Spec):
    """Which data set, how it is split and scaled.

    Attributes:
        name: A loader name of :data:`qfl_qiskit.data.LOADERS`.
        options: Keyword arguments of that loader (e.g. ``{views = ["fou", "kar"]}`` or ``{path = "..."}``).
        val_fraction: Share of samples in the validation split (early stopping).
        test_fraction: Share of samples in the test split.
        standardize: Scale features to zero mean, unit variance with statistics of the training split only.
        missing_rate: Probability that each modality of each sample is dropped (presence False), seeded; the
            missing-modality setting for the MMA model. At least one modality per sample is kept.
    """

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    val_fraction: float = Field(0.15, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.15, gt=0.0, lt=1.0)
    standardize: bool = True
    missing_rate: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _fractions(self) -> DataSpec:
        bad = _non_finite(self.options)
        if bad is not None:
            raise ValueError(f"options.{bad}: must be a finite number (got NaN or infinity)")
        sizes = [self.options.get(k, 1) for k in ("n", "num_modalities", "features")]
        if "n" in self.options and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
            why = limits.check_data_values(*sizes)  # refused here, before the data layer (and torch) is loaded
            if why:
                raise ValueError(f"options: {why}")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class _ModelBase(Spec):
    """Settings every model has: encoder to D features per modality, and the head."""

    label: str | None = Field(None, pattern=NAME_PATTERN)  # a name for tables and its folder (default: the model name)
    features: int = Field(2, ge=1, le=limits.MAX_WIDTH)
    encoder: Literal["linear", "mlp"] = "linear"
    encoder_hidden: int = Field(32, ge=1, le=limits.MAX_WIDTH)
    head_hidden: int = Field(0, ge=0, le=limits.MAX_WIDTH)

    @property
    def display(self) -> str:
        return self.label or self.name  # type: ignore[attr-defined]


class QFLModelSpec(_ModelBase):
    """Quantum Fusion Layer model (:class:`qfl_qiskit.models.QFLFusion`)."""

    name: Literal["qfl"] = "qfl"
    degree: int = Field(2, ge=1)
    layers: int = Field(1, ge=1)
    entanglement: Literal["full", "linear", "circular", "star"] = "linear"
    observables: int = Field(8, ge=1, le=limits.MAX_OBSERVABLES)
    observable_seed: int = Field(1234, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _fits(self) -> QFLModelSpec:
        # the modality count comes from the data: check the smallest case here, the real one when the model is built
        why = limits.check_qfl(1, self.features, self.degree, self.layers)
        if why:
            raise ValueError(why)
        return self


class MMAModelSpec(_ModelBase):
    """Missing-modality-agnostic quantum model (:class:`qfl_qiskit.models.MMAFusion`); ``features`` is the number
    of qubits per modality register."""

    name: Literal["mma"] = "mma"
    encoding_layers: int = Field(1, ge=1)
    trainable_layers: int = Field(1, ge=1)
    fusion_layers: int = Field(1, ge=1)
    entangler: Literal["linear", "circular", "full", "star", "chain"] = "linear"
    context: Literal["zero", "plus"] = "zero"
    readout: Literal["z", "pauli"] = "z"
    observables: int = Field(8, ge=1, le=limits.MAX_OBSERVABLES)
    observable_seed: int = Field(1234, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _fits(self) -> MMAModelSpec:
        why = limits.check_mma(1, self.features, limits.mma_layers(self.encoding_layers, self.trainable_layers,
                                                                    self.fusion_layers))
        if why:
            raise ValueError(why)
        return self


class ConcatModelSpec(_ModelBase):
    name: Literal["concat"] = "concat"
    out: int = Field(32, ge=1, le=limits.MAX_WIDTH)


class TFNModelSpec(_ModelBase):
    name: Literal["tfn"] = "tfn"
    out: int = Field(32, ge=1, le=limits.MAX_WIDTH)
    max_tensor: int = Field(1 << 16, ge=1, le=1 << 24)


class LMFModelSpec(_ModelBase):
    name: Literal["lmf"] = "lmf"
    rank: int = Field(4, ge=1, le=limits.MAX_WIDTH)
    out: int = Field(32, ge=1, le=limits.MAX_WIDTH)


class MFBModelSpec(_ModelBase):
    name: Literal["mfb"] = "mfb"
    factor: int = Field(4, ge=1, le=limits.MAX_WIDTH)
    out: int = Field(16, ge=1, le=limits.MAX_WIDTH)


class GCNModelSpec(_ModelBase):
    name: Literal["gcn"] = "gcn"
    hidden: int = Field(16, ge=1, le=limits.MAX_WIDTH)
    layers: int = Field(2, ge=1, le=64)
    adjacency: Literal["full", "learned"] = "full"  # learned: one sigmoid edge weight per modality pair


ModelSpec = Annotated[
    Union[QFLModelSpec, MMAModelSpec, ConcatModelSpec, TFNModelSpec, LMFModelSpec, MFBModelSpec, GCNModelSpec],
    Field(discriminator="name"),
]
MODEL_NAMES = ("qfl", "mma", "concat", "tfn", "lmf", "mfb", "gcn")


class OptimSpec(Spec):
    """Adam, mini-batches, early stopping on a validation metric.

    Attributes:
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        epochs: Maximum epochs.
        batch_size: Mini-batch size.
        patience: Epochs without improvement of ``monitor`` before stopping (0: never stop early).
        monitor: Validation metric for early stopping and the best checkpoint.
    """

    lr: float = Field(0.01, gt=0.0, le=10.0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    epochs: int = Field(30, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1)
    patience: int = Field(5, ge=0)
    monitor: Literal["accuracy", "macro_f1", "macro_auc", "loss"] = "macro_f1"


class LossSpec(Spec):
    """Cross-entropy, or focal loss with ``gamma`` and optional ``alpha`` (one float or one weight per class)."""

    name: Literal["cross_entropy", "focal"] = "cross_entropy"
    gamma: float = Field(2.0, ge=0.0, allow_inf_nan=False)
    alpha: float | list[float] | None = None

    @model_validator(mode="after")
    def _alpha(self) -> LossSpec:
        weights = [self.alpha] if isinstance(self.alpha, float) else self.alpha or []
        if any(w < 0 for w in weights):
            raise ValueError(f"alpha must be >= 0 (one weight, or one per class), got {self.alpha}")
        return self


#: Keys of ``[execution]`` that only the Runtime estimator reads (left out of other specs' JSON, so specs written
#: before they existed keep their ids and their checkpoints still resume).
RUNTIME_KEYS = ("backend", "mode", "max_time", "transpile_seeds", "mitigation", "runtime_mitigation",
                "max_qpu_seconds", "steps", "init_from", "job_retries")


class ExecutionSpec(Spec):
    """How quantum models evaluate their circuits while training.

    Attributes:
        estimator: "exact" (torch statevector), "aer" (``qfl_qiskit.execution.AerEstimator``) or "runtime"
            (IBM Runtime's executor Estimator: one job per optimisation step, see :mod:`qfl_qiskit.training.qpu`).
        precision: complex128 or complex64 (exact); for runtime, the target standard error per value (Runtime
            runs ceil(1/precision^2) shots; default 1/64 when neither precision nor shots is given).
        gradient: autograd (exact only), param_shift or spsa.
        shots: Shots per Pauli setting for Aer (None: exact Aer values), or per binding on Runtime.
        noise: Path of a noise spec TOML for Aer (None: noiseless).
        backend: Runtime backend: ``fake_<device>`` runs offline in local testing mode, an IBM device name uses the
            saved account (runtime only, required).
        mode: Runtime execution mode: ``batch`` (default), ``session`` (needs ``max_time``) or ``job``.
        max_time: Wall-time limit in seconds of the batch or session.
        transpile_seeds: Transpiler seeds swept once (the best ESP is kept); the ISA circuit is reused every step.
        mitigation: Our client-side mitigation (mitiq ZNE, DDD) around the Runtime estimator, inside the step's job.
        runtime_mitigation: Runtime's own resilience options, mapped by ``to_runtime_options`` (REM -> TREX, ZNE
            with gate folding or PEA, DDD -> dynamical decoupling, twirling); without it resilience level 0 runs,
            with nothing switched on (stated in the record).
        max_qpu_seconds: QPU-time budget of the whole run: refused before the first job when the estimate exceeds
            it, stopped cleanly before a step that would exceed it.
        steps: Optimisation steps on the device (default: every batch of ``optim.epochs`` epochs).
        init_from: A run folder (``results/<run>``) or model folder whose trained weights the run starts from.
        job_retries: Times a failed job is submitted again (with backoff) before the run stops.
    """

    estimator: Literal["exact", "aer", "runtime"] = "exact"
    precision: Literal["complex128", "complex64"] | float = "complex128"
    gradient: Literal["autograd", "param_shift", "spsa"] = "autograd"
    shots: int | None = Field(None, ge=1, le=1_000_000)
    noise: str | None = None
    backend: BackendName | None = None
    mode: Literal["job", "batch", "session"] = "batch"
    max_time: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    transpile_seeds: int = Field(4, ge=1, le=32)
    mitigation: MitigationSpec | None = None
    runtime_mitigation: MitigationSpec | None = None
    max_qpu_seconds: float | None = Field(None, gt=0.0)
    steps: int | None = Field(None, ge=1, le=100_000)
    init_from: str | None = Field(None, min_length=1)
    job_retries: int = Field(3, ge=0, le=10)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.estimator != "runtime":
            for key in RUNTIME_KEYS:
                data.pop(key, None)
        elif isinstance(self.precision, str):  # the simulator's dtype means nothing on Runtime: left out, so the
            data.pop("precision", None)        # JSON of a runtime spec loads back as the same spec
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ExecutionSpec:
        if self.gradient == "autograd" and self.estimator != "exact":
            raise ValueError(f"gradient 'autograd' needs estimator 'exact'; use param_shift or spsa with "
                             f"{self.estimator}")
        if self.estimator != "runtime":
            given = [k for k in RUNTIME_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(f"{given[0]} applies to estimator 'runtime' only")
            if isinstance(self.precision, float):
                raise ValueError("precision is 'complex128' or 'complex64' here; a number (target standard "
                                 "error) needs estimator 'runtime' (use shots with aer)")
        if self.estimator == "exact" and (self.shots is not None or self.noise is not None):
            raise ValueError("shots and noise need estimator 'aer'")
        if self.estimator == "runtime":
            self._check_runtime()
        return self

    def _check_runtime(self) -> None:
        if self.backend is None:
            raise ValueError("estimator 'runtime' needs backend (fake_<device> offline, or an IBM device name)")
        if self.noise is not None:
            raise ValueError("noise applies to estimator 'aer'; on Runtime the backend's own noise applies")
        if "precision" in self.model_fields_set and isinstance(self.precision, str):
            raise ValueError("on Runtime precision is the target standard error per value, e.g. 0.03 (or give "
                             "shots)")
        if isinstance(self.precision, float) and not 0.001 <= self.precision <= 1.0:
            raise ValueError(f"precision must be from 0.001 to 1 (target standard error; 0.001 is a million shots "
                             f"per binding), got {self.precision}")
        if isinstance(self.precision, float) and self.shots is not None:
            raise ValueError("give precision or shots, not both")
        if self.mode == "session" and self.max_time is None:
            raise ValueError("mode 'session' needs max_time (seconds) so an idle session cannot bill wall time")
        if self.mode == "job" and self.max_time is not None:
            raise ValueError("max_time applies to modes 'batch' and 'session', not 'job'")
        if self.mitigation is not None and "rem" in self.mitigation.techniques:
            raise ValueError("mitigation 'rem' needs a readout model Runtime does not report; use "
                             'runtime_mitigation = {techniques = ["rem"]} (TREX) instead')

    @property
    def target_precision(self) -> float | None:
        """Runtime's precision: the number given, else 1/64 unless shots are given."""
        if isinstance(self.precision, float):
            return self.precision
        return None if self.shots is not None else 1 / 64


class TrainSpec(Spec):
    """A training experiment: every model in ``models`` is trained on the same split with the same settings.

    Attributes:
        name: Run name (results go to ``results/<name>/``).
        seed: Seed of the split, missing-modality mask, model initialisation and batch order.
    """

    kind: Literal["train"] = "train"
    name: str = Field("run", min_length=1, pattern=NAME_PATTERN)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataSpec
    models: list[ModelSpec] = Field(min_length=1, max_length=64)
    optim: OptimSpec = OptimSpec()
    loss: LossSpec = LossSpec()
    execution: ExecutionSpec = ExecutionSpec()

    @model_validator(mode="before")
    @classmethod
    def _single_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            if "models" in data:
                raise ValueError("give either [model] or [[models]], not both")
            data = {**data, "models": [data["model"]]}
            del data["model"]
        return data

    @model_validator(mode="after")
    def _unique_labels(self) -> TrainSpec:
        labels = [m.display for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"two models are named {dup[0]!r}; give each a distinct 'label'")
        return self


def resolve_data_paths(data: dict[str, Any], spec_file: str | Path) -> dict[str, Any]:
    """The raw spec with a relative ``[data] options.path`` made absolute against the spec file's folder (so a
    spec and its data file move together, and a record of the run names the file wherever it is read from)."""
    table = data.get("data")
    options = table.get("options") if isinstance(table, dict) else None
    if isinstance(options, dict) and isinstance(options.get("path"), str) and options["path"]:
        p = Path(options["path"]).expanduser()
        if not p.is_absolute():
            p = (Path(spec_file).resolve().parent / p).resolve()
        data = {**data, "data": {**table, "options": {**options, "path": str(p)}}}
    return data


def load_train_spec(path: str | Path) -> TrainSpec:
    """Load a training spec TOML (``kind = "train"`` optional); ``[data] options.path`` is relative to the file.

    Raises:
        SpecError: Missing file, bad TOML, unknown keys, or invalid values (one line).
    """
    data = resolve_data_paths(read_toml(path), path)
    return validate(TrainSpec, data, source=str(path))
