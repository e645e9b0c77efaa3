"""The benchmark tables in the Markdown files are those of the saved results
(``python benchmarks/tables.py --check``), and the renderer and result writer work as
documented. Runs no benchmark."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(name):
    spec = importlib.util.spec_from_file_location(
        "benchmarks_" + name, os.path.join(ROOT, "benchmarks", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tables = _module("tables")
results = _module("results")
RESULT_FILES = sorted(f for f in os.listdir(tables.RESULTS) if f.endswith(".json"))


@pytest.mark.parametrize("path", tables.FILES)
def test_marked_blocks_are_current(path):
    path = os.path.join(ROOT, path)
    if not os.path.exists(path):
        pytest.skip("%s is absent" % path)
    assert tables.stale(path) == [], "run: python benchmarks/tables.py"


def test_check_mode_passes_on_the_repository():
    assert tables.main(["--check"]) == 0


@pytest.mark.parametrize("name", RESULT_FILES)
def test_result_files_have_the_common_layout(name):
    with open(os.path.join(tables.RESULTS, name), encoding="utf-8") as f:
        r = json.load(f)
    assert r["layout"] == results.LAYOUT and r["name"] == name[:-5]
    for key in ("command", "date", "machine", "load", "figures", "tables"):
        assert key in r, key
    assert r["command"].startswith("python ")
    assert tables.render_result(r, r["name"]).startswith("Measured ")


def _result(tmp_path, name="demo"):
    rec = results.start(name)
    figures = {"acc": 0.9777, "cases": [{"circuit": "a", "ratio": 2.271, "s": [1.0, 2.0]},
                                        {"circuit": "b", "ratio": 0.98, "s": [3.0, None]}]}
    spec = [{"id": "cases", "rows": "cases", "columns": [
        ["circuit", "circuit", "`{}`"], ["ratio", "ratio", "**{:.2f}**"],
        ["s", ["s[0]", "s[1]"], "{:.1f}"]]}]
    path = rec.save(figures, spec, {"acc": "{:.2f}"}, settings={"x": 1},
                    path=str(tmp_path / (name + ".json")))
    return path


def test_save_writes_the_common_layout(tmp_path):
    path = _result(tmp_path)
    r = results.load(path)
    assert r["name"] == "demo" and r["settings"] == {"x": 1}
    assert r["date"].endswith("Z") and r["machine"]["cpus"] == os.cpu_count()
    assert set(r["load"]) == {"loadavg_before", "loadavg_after", "other_cores"}
    assert [f for f in os.listdir(tmp_path)] == ["demo.json"]     # no temporary left


def test_blocks_and_inline_figures_render_and_check(tmp_path):
    _result(tmp_path)
    md = tmp_path / "doc.md"
    md.write_text("Intro.\n\n<!-- results:demo -->\nold table\n<!-- /results:demo -->\n\n"
                  "Accuracy <!-- result:demo.acc {:.2%} -->97.0 %<!-- /result --> and "
                  "ratio <!-- result:demo.cases[circuit=b].ratio -->1<!-- /result -->, "
                  "<!-- result:demo.cases[-1].circuit -->b<!-- /result -->; "
                  "<!-- result:demo.acc -->0.9<!-- /result -->.\n", encoding="utf-8")
    stale = tables.stale(str(md), str(tmp_path))
    assert stale == ["demo", "demo.acc", "demo.cases[circuit=b].ratio", "demo.acc"]
    assert tables.update(str(md), str(tmp_path))
    text = md.read_text(encoding="utf-8")
    assert "| `a` | **2.27** | 1.0 / 2.0 |" in text and "| `b` | **0.98** | 3.0 / - |" in text
    assert "97.77%<!-- /result -->" in text and "0.98<!-- /result -->, " in text
    assert "<!-- result:demo.acc -->0.98<!-- /result -->." in text       # formats["acc"]
    assert tables.stale(str(md), str(tmp_path)) == []
    assert not tables.update(str(md), str(tmp_path))


def test_files_without_markers_and_missing_results(tmp_path):
    md = tmp_path / "plain.md"
    md.write_text("No markers here: 97.7 %.\n", encoding="utf-8")
    assert tables.stale(str(md), str(tmp_path)) == [] and not tables.update(str(md))
    md.write_text("<!-- results:nothing -->\n<!-- /results:nothing -->\n", encoding="utf-8")
    assert "No saved result" in tables.render(md.read_text(), str(tmp_path))
    _result(tmp_path)
    with pytest.raises(tables.ResultError):
        tables.render("<!-- result:demo.no_such -->1<!-- /result -->", str(tmp_path))
    with pytest.raises(tables.ResultError):
        tables.render("<!-- results:demo#no_table -->\n<!-- /results:demo#no_table -->",
                      str(tmp_path))
