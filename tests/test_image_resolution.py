"""Which image a run uses and what pins it (imageref.run_digest and the references under it),
rule by rule: written for the mutants `make mutate` found alive — each assertion fails on a
one-token change of the rule it names."""

from __future__ import annotations

import pytest

from singkit.imageref import (Reference, check_record, login_server, normalize_digest, record_problem_key,
                              run_digest, target_reference, unpinned_text, wrapped_reference)

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
ACR = {"type": "registry", "login-server": "acr.io"}


def resolved(record: dict, registry: dict | None = ACR, **kw: bool) -> tuple[str, str | None]:
    ref, digest = run_digest(record, registry, **kw)
    return str(ref), digest


def test_an_unwrapped_record_is_pinned_by_sha256_then_its_image_digest_then_base_sha256() -> None:
    assert resolved({"image": "torch:2"}) == ("acr.io/torch:2", None)
    assert resolved({"image": "torch:2", "sha256": "1" * 64}) == ("acr.io/torch:2", D1)  # bare hex is normalised
    assert resolved({"image": f"torch:2@{D2}"}) == (f"acr.io/torch:2@{D2}", D2)
    assert resolved({"image": "torch:2", "base-sha256": D3}) == ("acr.io/torch:2", D3)
    assert resolved({"image": f"torch:2@{D2}", "sha256": D1, "base-sha256": D3})[1] == D1
    assert resolved({"image": f"torch:2@{D2}", "base-sha256": D3})[1] == D2


def test_a_wrapped_record_runs_the_wrapped_image_pinned_by_sha256_only() -> None:
    wrapped = {"image": f"torch:2@{D2}", "sing-wrap": True, "base-sha256": D3}
    assert resolved(wrapped) == ("acr.io/torch:2-sing", None)  # neither the base's digest nor base-sha256
    assert resolved({**wrapped, "sha256": D1}) == ("acr.io/torch:2-sing", D1)
    assert resolved({**wrapped, "sha256": D1, "wrapped-image": "team/torch-sing:7"}) == ("acr.io/team/torch-sing:7", D1)


def test_a_cluster_job_runs_the_base_of_a_wrapped_record_never_pinned_by_its_sha256() -> None:
    wrapped = {"image": "torch:2", "sing-wrap": True, "sha256": D1}
    assert resolved(wrapped, wrapped=False) == ("acr.io/torch:2", None)
    assert resolved({**wrapped, "base-sha256": D3}, wrapped=False) == ("acr.io/torch:2", D3)
    assert resolved({**wrapped, "image": f"torch:2@{D2}"}, wrapped=False)[1] == D2
    # wrapped=False changes nothing for a record that is not wrapped
    assert resolved({"image": "torch:2", "sha256": D1}, wrapped=False) == ("acr.io/torch:2", D1)


def test_target_reference_follows_sing_wrap() -> None:
    assert str(target_reference({"image": "torch:2", "sing-wrap": True}, ACR)) == "acr.io/torch:2-sing"
    assert str(target_reference({"image": "torch:2", "sing-wrap": False}, ACR)) == "acr.io/torch:2"
    assert str(target_reference({"image": "torch:2"}, None)) == "torch:2"


def test_the_wrapped_reference_has_a_tag_and_no_digest() -> None:
    assert str(wrapped_reference({"image": f"torch@{D2}"}, ACR)) == "acr.io/torch:latest-sing"
    assert str(wrapped_reference({"image": "torch:2", "wrapped-image": f"sing/torch@{D1}"}, ACR)) == "acr.io/sing/torch:latest"
    assert str(wrapped_reference({"image": "torch:2", "wrapped-image": "acr.io/sing/torch:3"}, ACR)) == "acr.io/sing/torch:3"


@pytest.mark.parametrize("server, expected", [
    ("acr.io", "acr.io"), ("https://acr.io/", "acr.io"), ("http://127.0.0.1:5000//", "127.0.0.1:5000"),
    ("  acr.io  ", "acr.io"), (None, ""), ("", ""),
])
def test_login_server_is_host_and_port(server: str | None, expected: str) -> None:
    assert login_server({"login-server": server}) == expected
    assert login_server(None) == login_server({}) == ""


def test_digests_and_references_that_do_not_parse() -> None:
    assert normalize_digest(None) is None and normalize_digest("") is None
    assert normalize_digest(f"  {D1.upper()} ") == D1
    for bad in ("sha256:" + "g" * 64, "1" * 63, "md5:" + "1" * 64, 5):
        with pytest.raises(ValueError, match="not a sha256 digest"):
            normalize_digest(bad)
    for bad in ("host.io/", "x:", "a b", "\t", f"x@{D1[:-1]}", "x@latest"):
        with pytest.raises(ValueError, match="not an image reference"):
            Reference.parse(bad)
    assert Reference.parse("  acr.io/x:1  ") == Reference("acr.io", "x", "1")
    assert Reference.parse("Team/x") == Reference("Team", "x")  # an upper-case first part is a host (Docker's rule)
    assert Reference.parse("team/x") == Reference("", "team/x")
    assert Reference.parse("localhost/x:1") == Reference("localhost", "x", "1")
    assert Reference.parse("acr.io:5000/a/b") == Reference("acr.io:5000", "a/b")
    assert Reference.parse("registry:5000/a") == Reference("registry:5000", "a")  # a port makes a host
    with pytest.raises(ValueError, match="not a repository name"):  # a tag is only in the last part, and
        Reference.parse("acr.io/a:1/b")  # `a:1/b` is no repository (distribution/reference's grammar)
    assert Reference.parse("acr.io/x").pinned(D1) == f"acr.io/x@{D1}"
    assert Reference.parse(f"acr.io/x:1@{D2}").pinned() == f"acr.io/x@{D2}"
    with pytest.raises(ValueError, match="carries no digest"):
        Reference.parse("acr.io/x:1").pinned()


def test_check_record_names_the_problem_or_none() -> None:
    assert check_record({"image": "torch:2", "sha256": D1}, ACR) is None
    assert check_record({}, ACR) is None and check_record({"image": "azureml:env:3"}, None) is None
    assert "lower case" in str(check_record({"image": "AzureML:env:3"}, None))
    bad_pin = check_record({"image": "torch:2", "sha256": "nope"}, ACR)
    bad_image = check_record({"image": "torch:"}, ACR)
    assert isinstance(bad_pin, ValueError) and record_problem_key(bad_pin) == "sha256"
    assert isinstance(bad_image, ValueError) and record_problem_key(bad_image) == "image"
    assert check_record({"image": "torch:2", "sing-wrap": True, "wrapped-image": "x:"}, ACR) is not None


def test_unpinned_text_says_what_is_true_of_the_record() -> None:
    plain = unpinned_text("t", {"image": "torch:2"})
    assert plain.startswith("docker record `t` is not pinned by digest") and "image.wrap --docker=t" in plain
    wrapped = unpinned_text("t", {"image": "torch:2", "sing-wrap": True})
    assert "wrapped image is not pinned" in wrapped and "pins the base" not in wrapped
    assert "the digest in `image:` pins the base it wraps" in unpinned_text("t", {"image": f"torch@{D1}", "sing-wrap": True})
    cluster = unpinned_text("t", {"image": "torch:2", "sing-wrap": True}, wrapped=False)
    assert "base image a compute cluster runs is not pinned" in cluster
    assert unpinned_text("t", {"image": "torch:2"}, wrapped=False) == plain
