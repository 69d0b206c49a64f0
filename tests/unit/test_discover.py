"""Which local images the discovery probes, in which order (engine/discover.py): a pure
ordering of what the engine lists. The probing itself runs against a real engine in
tests/integration/test_cli_first_minutes.py."""

from types import SimpleNamespace

from amldebug.core.images import candidates, created_key


def _image(tag, created, cmd=("python3",), env=(), labels=None, history=()):
    image = SimpleNamespace(tags=[tag] if tag else [], id=f"sha256:{tag}",
                            attrs={"Created": created, "Config": {"Cmd": list(cmd), "Env": list(env),
                                                                  "Labels": labels or {}}})
    image.built_by = list(history)
    return image


def _order(images):
    return [i.tags[0] for i in candidates(images, lambda image: image.built_by)]


def test_signs_of_the_server_come_first_newest_first_then_every_other_tagged_image():
    images = [
        _image("plain:1", "2026-12-01T10:00:00.5Z"),
        _image("aml:1", "2026-11-01T10:00:00Z", env=["AML_APP_ROOT=/var/azureml-app"]),
        _image("runit:1", "2026-11-02T10:00:00Z", cmd=["runsvdir", "/var/runit"]),
        _image("team/model:3", "2026-10-01T10:00:00Z",
               history=["/bin/sh -c pip install azureml-inference-server-http==1.5.1"]),
        _image("plain:2", "2026-12-02T10:00:00Z"),
        _image(None, "2026-12-03T10:00:00Z", env=["AML_APP_ROOT=/x"]),  # untagged: nothing to name
    ]
    assert _order(images) == ["runit:1", "aml:1", "team/model:3", "plain:2", "plain:1"]


def test_creation_times_with_trimmed_nanoseconds_sort_by_time():
    """Docker drops trailing zeros: '.5Z' is half a second, after '.123456789Z'."""
    earlier = _image("a:1", "2026-12-07T02:23:14.123456789Z", cmd=["azmlinfsrv"])
    later = _image("b:1", "2026-12-07T02:23:14.5Z", cmd=["azmlinfsrv"])
    whole = _image("c:1", "2026-12-07T02:23:14Z", cmd=["azmlinfsrv"])
    assert created_key(whole) < created_key(earlier) < created_key(later)
    assert _order([earlier, whole, later]) == ["b:1", "a:1", "c:1"]
