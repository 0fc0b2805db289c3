"""The JupyterLab server's contents manager for `python3 course.py lab` (the notebooks never import this).

Opening a notebook must not mark it modified. When its kernel starts, JupyterLab copies the kernel's
``language_info`` (Python version included) into the notebook's metadata and marks the notebook dirty
unless the two are equal. The Python version differs from machine to machine, so the course stores its
notebooks with the kernel's ``language_info`` *without* the version, and this manager adds the running
interpreter's version when a notebook is opened and takes it out again when it is saved (the pre-commit
hook does the same: ``nbstripout --extra-keys metadata.language_info.version``). The lab server and the
course kernel run on the same interpreter, the course's ``.venv``, so the two agree.
"""

from __future__ import annotations

from ipykernel.ipkernel import IPythonKernel
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager


def kernel_language_info() -> dict:
    """``language_info`` as the course kernel (ipykernel on this interpreter) reports it."""
    return {**IPythonKernel.language_info, "codemirror_mode": dict(IPythonKernel.language_info["codemirror_mode"])}


def stored_language_info() -> dict:
    """``language_info`` as the course's notebooks store it: the kernel's, without the Python version."""
    return {k: v for k, v in kernel_language_info().items() if k != "version"}


class CourseContentsManager(AsyncLargeFileManager):
    """Jupyter's default contents manager, plus the Python version in course notebooks' metadata while open."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model["type"] == "notebook" and model.get("content"):
            metadata = model["content"]["metadata"]
            if metadata.get("language_info") == stored_language_info():
                metadata["language_info"] = kernel_language_info()
        return model

    async def save(self, model, path=""):
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            metadata = model["content"].get("metadata", {})
            if metadata.get("language_info") == kernel_language_info():
                metadata["language_info"] = stored_language_info()
        return await super().save(model, path)
