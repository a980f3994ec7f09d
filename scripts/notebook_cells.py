"""Writes a Jupyter notebook for the Rust (evcxr) kernel from a list of (kind, source) cells.
Usage from Python: write_notebook(path, cells). Kept so notebooks can be regenerated and diffed."""
import json
from pathlib import Path


def write_notebook(path: str, cells: list[tuple[str, str]]) -> None:
    nb = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": src.strip("\n").splitlines(keepends=True), **({"execution_count": None, "outputs": []} if kind == "code" else {})}
            for kind, src in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs", "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust", "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
