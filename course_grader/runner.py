"""Runs INSIDE the sandbox: one student's code cells, then the grader's drivers, one step per command.

This file is public and holds nothing secret: it is bound read-only into the
sandbox as ``/grader/runner.py`` and run as ``python -I runner.py job.json``.
``job.json`` holds only what start-up needs (the modules to preload, where the
assignment's public ``drivers.py`` is); each step, with its inputs, arrives
over the protocol when it is to run, so nothing of a later question is in the
sandbox before then. The runner imports only the standard library and IPython
(``course_grader`` itself is not visible in the sandbox). Everything it reports
is treated by the grader as untrusted data: student code shares this process
and may tamper with it, which can only spoil the student's own results, never
decide credit (the checks run outside, on parsed values).

Protocol (one JSON object per line):

    runner -> grader   {"ready": true}                   once, after start-up
    grader -> runner   {"step": i, "kind": "cell", "source": str}
                       {"step": i, "kind": "driver", "question": id, "driver": name, "inputs": ...}
    runner -> grader   {"step": i, "status": "ok"|"error", "output": str,
                        "error": str|null, "result": ...}  after each step

A cell step is a student code cell, run through IPython exactly as Jupyter
would; a driver step calls ``drivers.<name>(inputs, h)``, which calls the
student's functions on the grader's inputs and returns plain data (see
:class:`Helpers`).
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import traceback

MAX_OUTPUT_CHARS = 20_000  # captured text kept per step
MAX_TRACEBACK_CHARS = 6_000
MAX_RESULT_BYTES = 64 * 2**20


class BoundedWriter(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int = MAX_OUTPUT_CHARS):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        tail = f"\n[... {self.dropped} more characters of output not kept]" if self.dropped else ""
        return "".join(self.parts) + tail


def format_exception(err: BaseException) -> str:
    """The traceback of ``err`` without the frames of IPython and of this runner (the student's code only)."""
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if "/IPython/" not in f.filename and not f.filename.endswith("runner.py")
    ]
    text = "".join(
        [
            "Traceback (most recent call last):\n",
            *traceback.format_list(frames),
            *traceback.format_exception_only(type(err), err),
        ]
    )
    if len(text) > MAX_TRACEBACK_CHARS:
        text = text[:1500] + "\n[...]\n" + text[-(MAX_TRACEBACK_CHARS - 1500) :]
    return text


class MissingName(Exception):
    """The notebook does not define a name the grader needs."""


class StudentNamespace:
    """Attribute access to the notebook's variables, with a clear message when one is missing."""

    def __init__(self, user_ns: dict):
        self._ns = user_ns

    def __getattr__(self, name: str):
        try:
            return self._ns[name]
        except KeyError:
            raise MissingName(
                f"your notebook does not define `{name}` (was its cell deleted, renamed, or did it fail to run?)"
            ) from None


def plain(value, _depth: int = 0):
    """``value`` as JSON-ready data: numbers, booleans, strings, None, lists and dicts of those.

    Tensors and arrays become nested lists of floats, NumPy scalars become
    Python numbers. Anything else is refused with a TypeError naming its type.
    """
    if _depth > 20:
        raise TypeError("the returned value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    module = type(value).__module__
    if module.startswith("torch"):
        import torch

        if isinstance(value, torch.Tensor):
            return plain(
                value.detach().cpu().double().numpy() if value.is_floating_point() else value.detach().cpu().numpy(),
                _depth + 1,
            )
    if module.startswith("numpy"):
        import numpy as np

        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                return value.astype(float if value.dtype.kind == "f" else value.dtype).tolist()
            raise TypeError(f"an array of dtype {value.dtype} is not a numeric result")
        if isinstance(value, np.generic):
            return plain(value.item(), _depth + 1)
    if isinstance(value, (list, tuple)):
        return [plain(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, _depth + 1) for k, v in value.items()}
    raise TypeError(f"a value of type {type(value).__name__} cannot be graded (return numbers, arrays or tensors)")


class Helpers:
    """What a driver's ``drive(inputs, h)`` gets: the student's names and safe ways to call them."""

    def __init__(self, user_ns: dict):
        self.student = StudentNamespace(user_ns)
        self.plain = plain

    def call(self, fn, *args, **kwargs) -> dict:
        """Call ``fn``; return ``{"value": plain(result)}`` or ``{"error": "Type: message", "traceback": ...}``."""
        result, error = self.run(fn, *args, **kwargs)
        if error is not None:
            return error
        try:
            return {"value": plain(result)}
        except BaseException as err:  # noqa: BLE001
            return self.error(err)

    def call_arrays(self, fn, *args, **kwargs) -> dict:
        """As :meth:`call` for a function returning tensors (a ``state_dict()``, a θ): the value is packed by
        :meth:`arrays`, and a single tensor becomes ``{"value": tensor}``."""
        result, error = self.run(fn, *args, **kwargs)
        if error is not None:
            return error
        try:
            return {"value": self.arrays(result if hasattr(result, "items") else {"value": result})}
        except BaseException as err:  # noqa: BLE001
            return self.error(err)

    def run(self, fn, *args, **kwargs):
        """Call ``fn``; return ``(result, None)``, or ``(None, error record)`` if it raised (as :meth:`call`)."""
        try:
            return fn(*args, **kwargs), None
        except BaseException as err:  # noqa: BLE001 - any failure of student code is a result, not a crash
            return None, self.error(err)

    @staticmethod
    def error(err: BaseException) -> dict:
        return {
            "error": f"{type(err).__name__}: {str(err)[:500]}",
            "exception": type(err).__name__,
            "traceback": format_exception(err),
        }

    def arrays(self, mapping) -> dict:
        """Pack a dict of tensors/arrays (e.g. a ``state_dict()``) as an .npz blob the grader loads without pickle."""
        import numpy as np

        if not hasattr(mapping, "items"):
            raise TypeError(f"expected a dict of tensors (e.g. net.state_dict()), got {type(mapping).__name__}")
        arrays = {}
        for key, value in mapping.items():
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"entry {key!r} is not numeric (dtype {array.dtype})")
            arrays[str(key)] = array
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return {"__npz__": base64.b64encode(buffer.getvalue()).decode("ascii")}


class Runner:
    def __init__(self, job: dict):
        from IPython.core.interactiveshell import InteractiveShell

        self.job = job
        self.drivers = None
        self.shell = InteractiveShell.instance(colors="nocolor")
        self.shell.user_ns["__name__"] = "__main__"
        # Errors are reported once, by format_exception, not printed into the output as well.
        self.shell.showtraceback = lambda *args, **kwargs: None
        self.shell.showsyntaxerror = lambda *args, **kwargs: None

    def run_cell(self, source: str) -> dict:
        capture = BoundedWriter()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        try:
            result = self.shell.run_cell(source, store_history=True)
            err = result.error_before_exec or result.error_in_exec
        except BaseException as exc:  # noqa: BLE001
            err = exc
        finally:
            sys.stdout, sys.stderr = saved
        self._close_figures()
        return {
            "status": "ok" if err is None else "error",
            "output": capture.text(),
            "error": None if err is None else format_exception(err),
        }

    def run_driver(self, step: dict) -> dict:
        capture = BoundedWriter()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        try:
            drive = getattr(self._drivers(), step["driver"])
            result = drive(step["inputs"], Helpers(self.shell.user_ns))
            reply = {"status": "ok", "result": plain(result), "error": None}  # NaN/inf as JSON's NaN, Infinity
        except MissingName as err:
            reply = {"status": "error", "error": str(err), "missing": True}
        except BaseException as err:  # noqa: BLE001
            reply = {"status": "error", "error": format_exception(err)}
        finally:
            sys.stdout, sys.stderr = saved
        reply["output"] = capture.text()
        return reply

    def _drivers(self):
        """The assignment's public drivers.py, imported at the first driver step (after the student's cells)."""
        if self.drivers is None:
            import importlib.util

            spec = importlib.util.spec_from_file_location("grader_drivers", self.job["drivers"])
            module = importlib.util.module_from_spec(spec)
            sys.modules["grader_drivers"] = module  # as an import would (dataclasses look their module up)
            spec.loader.exec_module(module)
            self.drivers = module
        return self.drivers

    @staticmethod
    def _close_figures() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            try:
                pyplot.close("all")
            except Exception:  # noqa: BLE001
                pass


def main() -> int:
    # The protocol gets private copies of stdin/stdout (not inherited by child
    # processes); student code sees /dev/null as stdin and its output at the
    # file-descriptor level goes to a file in the sandbox's own /tmp.
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sink = (
        os.open("/tmp/.grader-fd-output", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if os.path.isdir("/tmp")
        else null
    )
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    sys.stdin = open(os.devnull)  # noqa: SIM115

    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    home = os.environ.get("HOME")
    if home:
        os.makedirs(home, exist_ok=True)
    for module in job.get("preload", []):  # heavy imports before the first cell's clock starts
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 - the student's own import will report it
            pass
    runner = Runner(job)

    def send(message: dict) -> None:
        data = json.dumps(message)
        if len(data) > MAX_RESULT_BYTES:
            message = {
                "step": message.get("step"),
                "status": "error",
                "output": "",
                "error": f"the result is too large to grade ({len(data)} bytes)",
            }
            data = json.dumps(message)
        proto_out.write(data + "\n")
        proto_out.flush()

    send({"ready": True})
    for line in proto_in:
        step = json.loads(line)  # from the grader: trusted
        reply = runner.run_cell(step["source"]) if step["kind"] == "cell" else runner.run_driver(step)
        reply["step"] = step["step"]
        send(reply)
    return 0


if __name__ == "__main__":
    code = main()
    # The grader has every reply (each was flushed): end here, without the interpreter's clean-up (half a second
    # of CPU with torch loaded, for every submission) and without running what the student registered for exit.
    os._exit(code)
