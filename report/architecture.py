"""The model in use: the configured architecture (a built-in design or the user's builder
``module:function``) or a ``.keras`` file trained elsewhere (``model.path`` / ``--model``),
checked against the study's contract (:func:`xaikit.model.check_contract`) before anything is
trained. Every failure is one line (:class:`xaikit.errors.ModelError`, exit status 2).
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

from xaikit.errors import ModelError

from . import artifacts
from .context import ROOT, Context, log

CHANNELS = 1          # images are decoded to grayscale (xaikit.data)


def spec(ctx: Context) -> str:
    return ctx.cfg["model.architecture"]


def model_file(ctx: Context) -> Path | None:
    """The model file trained elsewhere (``model.path``), or None when the model is trained here."""
    return Path(ctx.cfg["model.path"]).expanduser().resolve() if ctx.cfg["model.path"] else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def resolve_builder(name: str):
    """(builder, source file or None for a built-in) of ``model.architecture``."""
    from xaikit.model import BUILDERS
    if name in BUILDERS:
        return BUILDERS[name], None
    module, _, fn = name.partition(":")
    for where in (str(Path.cwd()), str(ROOT)):       # examples.my_cnn from the project folder
        if where not in sys.path:
            sys.path.append(where)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:      # a typo, a syntax error, a failing import inside: one line
        raise ModelError(f"model.architecture {name!r}: module {module!r} could not be imported "
                         f"({_first_line(exc)}); expected an importable module with a builder, e.g. "
                         f"'examples.my_cnn:build'") from None
    builder = getattr(mod, fn, None)
    if not callable(builder):
        raise ModelError(f"model.architecture {name!r}: module {module!r} has no function {fn!r}; expected "
                         f"build(image_size, channels, *, seed, dropout) -> keras.Model")
    return builder, Path(mod.__file__).resolve()


def sources(ctx: Context) -> list[Path]:
    """Files outside xaikit/ and report/ that the models are made from: the user's builder
    module, the model file trained elsewhere."""
    out = []
    if ":" in spec(ctx):
        out.append(resolve_builder(spec(ctx))[1])
    if model_file(ctx) is not None and model_file(ctx).is_file():
        out.append(model_file(ctx))
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(ctx: Context) -> str:
    """Part of every model's cache key: the architecture's name, the source of the user's
    builder (editing it retrains) and the hash of the model file trained elsewhere."""
    f = model_file(ctx)
    return artifacts.digest(spec(ctx), [p.read_bytes().hex() for p in sources(ctx) if p != f],
                            sha256(f) if f is not None and f.is_file() else None)


def _check(ctx: Context, model, what: str):
    from xaikit.model import ContractError, check_contract
    a = ctx.cfg.section("attribution")
    try:
        return check_contract(model, ctx.cfg["data.image_size"], CHANNELS, gradcam_layer=a["gradcam_layer"],
                              gradcam_early_layer=a["gradcam_early_layer"])
    except ContractError as exc:
        raise ModelError(f"{what}: {exc}") from None


def _built(ctx: Context, *, seed: int, dropout: float):
    builder, _ = resolve_builder(spec(ctx))
    try:
        model = builder(ctx.cfg["data.image_size"], CHANNELS, seed=seed, dropout=dropout)
    except Exception as exc:
        raise ModelError(f"model.architecture {spec(ctx)!r}: the builder raised {_first_line(exc)}; expected "
                         f"build(image_size, channels, *, seed, dropout) -> keras.Model") from None
    return _check(ctx, model, f"model.architecture {spec(ctx)!r}")


def build(ctx: Context, *, seed: int, dropout: float):
    """A fresh, untrained model of the configured architecture in its two-class form: the
    builder's, or (a model file in use) the file's architecture cloned with fresh weights."""
    if model_file(ctx) is not None:
        from xaikit.model import fresh_copy
        return fresh_copy(external(ctx)[0], seed)
    return _built(ctx, seed=seed, dropout=dropout).model


def external(ctx: Context):
    """(model in its two-class form, contract, sha256) of the model file, loaded once per build."""
    f = model_file(ctx)
    if ctx.model_file is not None and ctx.model_file[0] == f:
        return ctx.model_file[1]
    import zipfile

    import keras

    import xaikit.model  # noqa: F401  (registers xaikit's layers, e.g. PerImageStandardization, for loading)
    if not f.is_file():
        raise ModelError(f"model.path {str(f)!r} not found; expected a .keras file saved with model.save()")
    if not zipfile.is_zipfile(f):          # Keras would say "File not found" for any non-zip file
        raise ModelError(f"model.path {str(f)!r} is not a Keras model file (not a .keras zip archive); expected "
                         f"a .keras file saved with model.save()")
    try:
        model = keras.saving.load_model(f, safe_mode=True, compile=False)
    except (Exception, zipfile.BadZipFile) as exc:
        reason = _first_line(exc)
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            reason = "it contains a Lambda layer (arbitrary code), which Keras safe mode refuses"
        raise ModelError(f"model.path {str(f)!r} is not a Keras model that loads safely ({reason}); expected "
                         f"a .keras file saved with model.save()") from None
    contract = _check(ctx, model, f"model.path {str(f)!r}")
    out = (contract.model, contract, sha256(f))
    ctx.model_file = (f, out)
    return out


def check(ctx: Context):
    """The contract, checked before any training (a probe model of the configured builder, or
    the model file); logs what Grad-CAM will use. Returns the Contract."""
    f = model_file(ctx)
    if f is not None:
        _, contract, digest_ = external(ctx)
        log(f"model main: {f} (sha256 {digest_[:12]}), trained elsewhere; it is explained as it is, not "
            f"trained here; Q5 retrains its architecture with fresh weights")
    else:
        contract = _built(ctx, seed=ctx.cfg["train.seed"], dropout=ctx.cfg["train.dropout"])
    if contract.cam.layer is None:
        log(f"warning: {contract.cam.reason}: Q4 and the Grad-CAM parts of Q2.3, Q5 and the explorer are "
            f"skipped; IG still runs")
    return contract


def describe(ctx: Context, model) -> dict:
    """What Q2.1 says of the model in use, read from the model itself."""
    from xaikit.model import DESCRIPTIONS, TwoLogits, _is_conv, gradcam_layers
    import keras
    a = ctx.cfg.section("attribution")
    cam = gradcam_layers(model, a["gradcam_layer"], a["gradcam_early_layer"])
    types = [type(l).__name__ for l in model.layers]
    f = model_file(ctx)
    name = spec(ctx)
    builder_file = sources(ctx)[0] if ":" in name and f is None else None
    out = {"architecture": name, "builtin": f is None and ":" not in name,
           "description": DESCRIPTIONS.get(name) if f is None else None,
           "builder_file": (builder_file.relative_to(ROOT).as_posix() if builder_file and builder_file.is_relative_to(ROOT)
                            else str(builder_file) if builder_file else None),
           "external": f is not None, "path": str(f) if f else None,
           "sha256": external(ctx)[2] if f is not None else None,
           "sha256_short": external(ctx)[2][:16] if f is not None else None,
           "name": model.name, "n_layers": len(model.layers),
           "conv_layers": [l.name for l in model.layers if _is_conv(l)],
           "standardizes": any(type(l).__name__ == "PerImageStandardization" for l in model.layers),
           "batchnorm": any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers),
           "dropout": any(isinstance(l, keras.layers.Dropout) for l in model.layers),
           "gradcam_layer": cam.layer, "gradcam_grid": cam.grid, "gradcam_reason": cam.reason,
           "input": list(model.inputs[0].shape[1:])}
    def producer(tensor):
        return next((l for l in model.layers if getattr(l, "output", None) is tensor), None)

    pre = producer(model.layers[-1].input)          # the pre-softmax output (xaikit.model.as_two_class)
    sigmoid = isinstance(pre, TwoLogits)            # a 1-unit sigmoid model: [0, z] from its logit z
    if sigmoid:
        pre = producer(pre.input)
    out["head"] = "sigmoid" if sigmoid else "softmax"
    out["logits"] = pre.name if pre is not None else None
    out["types"] = sorted(set(types) - {"InputLayer"})
    return out
