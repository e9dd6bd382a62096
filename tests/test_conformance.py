"""Every guest language passes every conformance vector, with identical results.

The suite builds each language's plugin from source (a missing toolchain fails here: run
``scripts/install-toolchains``) and drives it through the public ``Runtime`` API.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from conformance.runner import LANGUAGES, Report, load_vectors, render, run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    cache = tmp_path_factory.mktemp("conformance-cache")
    result = anyio.run(lambda: run(LANGUAGES, cache_dir=cache))
    print(render(result))
    return result


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_passes_every_vector(report: Report, language: str) -> None:
    assert language not in report.build_errors, report.build_errors.get(language)
    failures = [f"{o.vector}: {o.detail}" for (lang, _), o in report.outcomes.items()
                if lang == language and not o.ok]
    assert failures == []
    assert sum(1 for (lang, _) in report.outcomes if lang == language) == len(report.vectors)


def test_languages_give_identical_results(report: Report) -> None:
    assert report.mismatches == []


def test_vectors_cover_the_promised_cases() -> None:
    vectors = load_vectors()
    names = {v["name"] for v in vectors}
    capabilities = {v["capability"] for v in vectors}
    assert capabilities == {"transform", "echo", "fail", "log"}
    assert any(v.get("input_generator", {}).get("times", 0) * len(v.get("input_generator", {})
               .get("repeat", "")) >= 1_000_000 for v in vectors)
    assert {"unicode-escapes", "nested-extra-keys-ignored", "empty-text", "fail-reports-message",
            "log-line", "echo-1mb-string"} <= names


def test_a_missing_language_is_a_failure_not_a_skip(tmp_path: Path) -> None:
    from conformance import runner

    assert runner.build("no-such-language") is not None
