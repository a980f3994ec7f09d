"""Checks executed notebooks: every cell that ends in a table, figure or verdict display shows it
as HTML or PNG (not as a Debug dump), and no cell printed an error.
Usage: python3 scripts/check_notebooks.py target/notebooks/*.ipynb"""
import json
import sys

EXPECTED = {
    "notebook::table": "text/html",
    "notebook::Html": "text/html",
    "notebook::claims": "text/html",
    "notebook::image": "image/png",
}


def check(path: str) -> list[str]:
    problems = []
    nb = json.load(open(path))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        last = "".join(cell["source"]).strip().split("\n")[-1]
        outputs = cell.get("outputs", [])
        if any(o.get("output_type") == "error" for o in outputs):
            problems.append(f"{path}: cell {i} failed")
        for prefix, mime in EXPECTED.items():
            if last.startswith(prefix):
                shown = [o for o in outputs if mime in o.get("data", {})]
                if not shown:
                    problems.append(f"{path}: cell {i} (`{last}`) shows no {mime}")
                elif mime == "image/png" and len(shown[0]["data"][mime]) < 1000:
                    problems.append(f"{path}: cell {i} shows an image of under 1000 base64 characters")
    return problems


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: check_notebooks.py NOTEBOOK...")
    problems = [p for path in sys.argv[1:] for p in check(path)]
    for p in problems:
        print(p)
    print(f"{len(sys.argv) - 1} notebooks checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)
