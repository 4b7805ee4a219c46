"""Read a `torch.save` file without running any code from it.

Released cross-view checkpoints are often whole pickled modules (GeoBridge's is loaded by its
authors with ``torch.load(weights_only=False)``, which would run whatever the file asks for).
`load_checkpoint` reads the zip archive itself and unpickles ``data.pkl`` with
`RestrictedUnpickler`:

- only tensor rebuilding runs: torch's ``_rebuild_tensor_v2`` / ``_rebuild_parameter`` family,
  storage types (mapped to dtypes), ``OrderedDict``, ``set``, dtypes and ``torch.device``;
- any other global (``__main__.GeoBridge``, ``transformers...CLIPModel``, ``torch.nn...Linear``)
  becomes an inert `InertClass`: creating an instance the way pickle creates objects
  (``cls.__new__`` + state) gives an `InertObject` that only records its class path and state;
- *calling* any such global (a REDUCE to ``os.system``, ``builtins.open``, ``eval``...) is refused
  with `UnsafePickleError` before anything runs.

`module_tensors` then walks the inert tree like ``nn.Module.state_dict()`` (parameters and
persistent buffers, by attribute path).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}
_DTYPE_NAMES = {str(dtype).removeprefix("torch."): dtype for dtype in _STORAGE_DTYPES.values()}


class UnsafePickleError(ValueError):
    """The checkpoint asks to run code (or is not a torch.save archive we can read safely)."""


class InertObject:
    """An object of a class we refuse to import: its class path and pickled state, nothing more."""

    __slots__ = ("class_path", "args", "state")

    def __init__(self, class_path: str, args: tuple[Any, ...]) -> None:
        self.class_path = class_path
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.class_path}>"


class _InertMeta(type):
    """Metaclass of inert classes: `cls.__new__` (pickle's NEWOBJ) makes an InertObject;
    calling the class (pickle's REDUCE, i.e. running a function) is refused."""

    class_path: str  # every inert class has one (InertClass's, or the one `_inert_class` gives)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        shown = ", ".join(_short(a) for a in args)
        raise UnsafePickleError(
            f"the checkpoint asks to call {cls.class_path}({shown}) while loading; refusing to run code "
            f"from a checkpoint (only tensor data is read)"
        )


class InertClass(metaclass=_InertMeta):
    """Base of the stand-ins `RestrictedUnpickler.find_class` returns for unknown globals."""

    class_path = "?"

    def __new__(cls, *args: Any) -> InertObject:  # type: ignore[misc]
        return InertObject(cls.class_path, args)


def _inert_class(module: str, name: str) -> type:
    return _InertMeta(name, (InertClass,), {"class_path": f"{module}.{name}", "__module__": "inert"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _StorageType:
    """A pickled storage class (``torch.FloatStorage``): only its dtype matters."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_from_type_v2(func: Any, new_type: Any, args: tuple, state: Any) -> torch.Tensor:
    """A tensor with extra Python attributes (e.g. transformers' ``_is_hf_initialized``): rebuild
    the plain tensor, drop the attributes; any subclass other than Tensor/Parameter is refused."""
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafePickleError(
            f"the checkpoint holds a tensor of type {new_type!r}; only plain tensors are read"
        )
    if func not in _SAFE_FUNCTIONS.values():
        raise UnsafePickleError(f"the checkpoint rebuilds a tensor with {func!r}; refusing")
    return func(*args)


def _rebuild_parameter(
    data: torch.Tensor, requires_grad: bool, backward_hooks: Any, state: Any = None
) -> Any:
    """A parameter, as its tensor (hooks and attributes dropped)."""
    return data


def _rebuild_tensor_v2(
    storage: Any,
    offset: int,
    size: tuple,
    stride: tuple,
    requires_grad: bool,
    backward_hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError(
            f"the checkpoint rebuilds a tensor from {type(storage).__name__}, not a storage"
        )
    return torch._utils._rebuild_tensor(storage, offset, size, stride)


def _device(spec: Any, index: Any = None) -> str:
    return str(spec) if index is None else f"{spec}:{index}"


_SAFE_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
}
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **_SAFE_FUNCTIONS,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "device"): _device,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles torch's ``data.pkl``: tensors from the archive's storages, inert everything else."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, torch.storage.TypedStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPE_NAMES:
            return _DTYPE_NAMES[name]
        return _inert_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id {_short(pid)} in the checkpoint")
        _, storage_type, key, _location, numel = pid
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else storage_type
        if not isinstance(dtype, torch.dtype):
            raise UnsafePickleError(f"unknown storage type {_short(storage_type)} in the checkpoint")
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise UnsafePickleError(
                    f"the checkpoint has no data record {key!r} (truncated file?)"
                ) from None
            untyped = (
                torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage()
                if raw
                else torch.UntypedStorage(0)
            )
            self._storages[key] = torch.storage.TypedStorage(
                wrap_storage=untyped, dtype=dtype, _internal=True
            )
        return self._storages[key]


def load_checkpoint(path: str | Path) -> Any:
    """The unpickled object of a `torch.save` zip archive: tensors real, other objects inert.

    Raises `UnsafePickleError` if the pickle would call anything but tensor rebuilding, and
    `ValueError` if the file is not a torch zip archive (torch < 1.6's legacy format included).
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, IsADirectoryError):
        raise ValueError(
            f"{path} is not a torch.save zip archive (torch >= 1.6 format); legacy or other "
            f"formats are not read"
        ) from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(
                f"{path} is not a torch.save archive: expected one <name>/data.pkl, found {pickles}"
            )
        prefix = pickles[0][: -len("data.pkl")]
        unpickler = RestrictedUnpickler(archive.read(pickles[0]), archive, prefix)
        try:
            return unpickler.load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError) as err:
            raise ValueError(
                f"{path}: cannot read the pickled checkpoint ({type(err).__name__}: {err})"
            ) from None


def is_module(obj: Any) -> bool:
    """True for an inert object pickled from an ``nn.Module`` (it has ``_parameters``/``_modules``)."""
    return isinstance(obj, InertObject) and isinstance(obj.state, dict) and "_modules" in obj.state


def attribute(obj: Any, name: str) -> Any:
    """Sub-module or attribute `name` of an inert module, or None."""
    if not isinstance(obj, InertObject) or not isinstance(obj.state, dict):
        return None
    for table in ("_modules", "_parameters", "_buffers"):
        found = obj.state.get(table) or {}
        if name in found:
            return found[name]
    return obj.state.get(name)


def module_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """What ``state_dict()`` of the pickled module would hold: parameters and persistent buffers
    by dotted attribute path (None entries skipped)."""
    if not is_module(obj):
        raise ValueError(f"{prefix or 'the checkpoint'} is not a pickled torch module")
    state = obj.state
    out: dict[str, torch.Tensor] = {}
    skipped = set(state.get("_non_persistent_buffers_set") or ())
    for table in ("_parameters", "_buffers"):
        for name, value in (state.get(table) or {}).items():
            if value is None or (table == "_buffers" and name in skipped):
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_tensors(child, f"{prefix}{name}."))
    return out


def plain(obj: Any) -> Any:
    """Inert objects as dicts of their state (for reading pickled configs), recursively."""
    if isinstance(obj, InertObject):
        return plain(obj.state) if isinstance(obj.state, dict) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, torch.dtype):
        return str(obj).removeprefix("torch.")
    return obj
