"""``amldebug check``: the guide's "break deployment into steps", before anything is
deployed. Each check is a line: pass or fail, with the fix."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

from .core.options import AttachOptions
from .core.scriptcheck import defined_functions, syntax_error
from .core.spec import ServiceSpec, layout, spec_from_options
from .errors import UsageError
from .sources.project import load_project

SERVER_PACKAGES = ("azureml-inference-server-http", "azureml-defaults")
_REQ = re.compile(r"^\s*-?\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*((?:[<>=!~]=?|===)\s*[^\s;#,]+)?")


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return line if self.ok or not self.fix else f"{line}\n      fix: {self.fix}"


def check_entry_script(path: Path) -> Check:
    if not path.is_file():
        return Check("entry script", False, f"{path} does not exist", "pass --entry-script relative to SOURCE_DIR")
    problem = syntax_error(path)
    if problem:
        return Check("entry script", False, problem, "fix the syntax error")
    missing = [fn for fn in ("init", "run") if fn not in defined_functions(path)]
    if missing:
        return Check("entry script", False, f"{path} does not define {' and '.join(f + '()' for f in missing)}",
                     "define init() (called once at start) and run(raw_data) (called per request)")
    return Check("entry script", True, f"{path} compiles and defines init() and run()")


def _version_tuple(text: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def server_requirement(lines: list[str]) -> Optional[tuple[str, str]]:
    """(package, version spec) of the first line that brings the scoring server, if any."""
    for line in lines:
        match = _REQ.match(line.split("#", 1)[0])
        if match and match.group(1).lower().replace("_", "-") in SERVER_PACKAGES:
            return match.group(1).lower().replace("_", "-"), (match.group(2) or "").replace(" ", "")
    return None


def check_environment(path: Path) -> Check:
    if not path.is_file():
        return Check("environment", False, f"{path} does not exist", "pass --env with a requirements.txt or conda YAML")
    from .errors import UsageError
    from .sources import read_setup
    from .sources.envfile import read_text
    from .sources.kinds import kind_of

    if kind_of(path).is_azureml:  # an Azure ML environment definition or inference configuration
        try:
            setup = read_setup(path)
        except UsageError as exc:
            return Check("environment", False, str(exc), "fix the file as the message says")
        if setup.environment is None:
            return Check("environment", True, f"{path} uses {setup.base_image} as it is (userManagedDependencies); "
                         "it must have azmlinfsrv")
        lines = list(setup.environment.pip)
    else:
        try:
            lines = read_text(path).splitlines()  # decoded as pip decodes it (a BOM, a coding line, cp1252...)
        except UsageError as exc:
            return Check("environment", False, str(exc), "save it as UTF-8 text")
    return _server_check(str(path), lines)


def _server_check(label: str, lines) -> Check:
    """The environment ``label`` names (its requirement lines) brings the scoring server."""
    found = server_requirement(lines)
    if not found:
        return Check("environment", False, f"{label} lists neither azureml-inference-server-http nor azureml-defaults",
                     "add 'azureml-inference-server-http' (or azureml-defaults>=1.0.45) to it")
    package, spec = found
    if package == "azureml-defaults" and spec.startswith(("==", "<=", "<", "~=")) and spec.lstrip("=<~") and \
            _version_tuple(spec) < (1, 0, 45):
        return Check("environment", False, f"{label} pins azureml-defaults{spec}, older than 1.0.45",
                     "use azureml-defaults>=1.0.45, or azureml-inference-server-http")
    return Check("environment", True, f"{label} lists {package}{spec}")


def check_deployment_environment(setup, options: AttachOptions) -> Check:
    """A v2 deployment's environment, as ``attach --deployment`` would use it: --env
    replaces it; else its conda file (or inline conda_file), its image as it is, its build
    context, or a registered environment (the az command that exports it)."""
    from .sources.deployment import environment_reference_message, no_environment_message

    if options.env_file is not None:
        return check_environment(Path(options.env_file))
    if setup.environment is not None:
        source = setup.environment.source
        label = str(source) if source is not None and source != Path(setup.origin) else \
            f"{setup.origin} (environment.conda_file)"
        return _server_check(label, setup.environment.pip)
    if setup.build is not None:
        return Check("environment", True, f"{setup.origin} builds its image from {setup.build.dockerfile} "
                                          "(environment.build); it must install azureml-inference-server-http")
    if setup.base_image:
        return Check("environment", True, f"{setup.origin} uses the image {setup.base_image} as it is (no "
                                          "conda_file); it must have azmlinfsrv")
    if options.image:
        return Check("environment", True, f"--image {options.image} is used as it is; it must have azmlinfsrv")
    message = (environment_reference_message(setup.origin, setup.environment_reference)
               if setup.environment_reference else no_environment_message(setup.origin))
    return Check("environment", False, *message.split("; ", 1))


def check_model(spec: ServiceSpec) -> Check:
    """The spec's (first) model exists, and where the service places it: as
    LocalWebservice does, or for a v2 deployment as the v2 local endpoint does (the model
    path's parent folder), by the same layout ``attach`` uses."""
    model = Path(spec.model_dir)
    if not model.exists():
        return Check("model", False, f"{model} does not exist", "pass --model-dir with your model file or folder")
    if model.is_dir() and not any(model.iterdir()):
        return Check("model", False, f"{model} is an empty folder", "put the model files in it")
    lay = layout(spec)
    if spec.deployment:
        hashed = " (azure-ai-ml names a model without a name by its content's sha256, version 1)" if \
            re.fullmatch(r"[0-9a-f]{64}", spec.model_name) else ""
        return Check("model", True, f"{model.parent} (the model path's parent folder) placed at {lay.model_target}"
                                    f"{hashed}; AZUREML_MODEL_DIR={lay.model_dir_rel}; the model is at "
                                    f"os.path.join(AZUREML_MODEL_DIR, '{model.name}')")
    return Check("model", True, f"placed at {lay.model_target}; AZUREML_MODEL_DIR={lay.model_dir_rel}; "
                                f"Model.get_model_path('{spec.model_name}') finds its single entry")


def find_environment_file(source_dir: Path) -> Optional[Path]:
    for candidate in ("requirements.txt", "environment.yml", "conda.yml", "conda.yaml", "environment.yaml"):
        if (source_dir / candidate).is_file():
            return source_dir / candidate
    return None


def check_image(client, spec) -> list[Check]:
    """The image has azmlinfsrv, its installed packages support its Python (their METADATA's
    Requires-Python), and the entry script imports inside it (init() is not run)."""
    from .core.spec import PAYLOAD_ROOT
    from .diagnose import NEWER_PYTHON, diagnose
    from .diagnose.image import explain, misfits_check, read_facts
    from .engine import docker as engine
    from .errors import AmlDebugError
    from .engine import inject
    from .payload.common import protocol

    try:
        image = engine.get_image(client, spec.image)
        payload = inject.payload_dir()
        info = engine.probe_image(client, image, payload, inject.cache_root())
    except AmlDebugError as exc:
        return [Check("image", False, str(exc).split("; ")[0], "; ".join(str(exc).split("; ")[1:]))]
    checks = [Check("image", True, f"{spec.image} runs azmlinfsrv {info.get('azureml-inference-server-http')} "
                                   f"with Python {info['version']} ({info['python']})")]
    facts = None
    try:  # what each installed package's METADATA requires of Python, read by the image's Python
        facts = read_facts(lambda code, args: engine.run_once(client, image.id, [info["python"], "-c", code, *args],
                                                              ref=spec.image), spec.image)
    except AmlDebugError:
        pass  # the import check below still runs; its failure says what is wrong
    misfit = misfits_check(facts) if facts else None
    if misfit:  # only a failure is a line of its own: an image that serves has nothing to add
        checks.append(Check("packages for its Python", False, *misfit))
    lay = layout(spec, server=info["server"])  # placed as the service places it (v1, or a v2 deployment)
    volumes = {spec.source_dir: {"bind": lay.code_dir, "mode": "ro"}, str(payload): {"bind": PAYLOAD_ROOT, "mode": "ro"}}
    env = {k: v for k, v in lay.env.items() if not k.startswith(protocol.ENV_PREFIX)}
    code, output = engine.run_once(client, image.id, [info["python"], f"{PAYLOAD_ROOT}/{protocol.IMPORT_CHECK_SCRIPT}"],
                                   ref=spec.image,
                                   placed=engine.Placement(volumes=volumes, mounts=engine.model_mounts(lay),
                                                           environment=env, working_dir=lay.workdir or lay.app_root))
    if code == 0 and protocol.IMPORT_OK in output:
        checks.append(Check("import in image", True, f"{spec.entry_script} imports in {spec.image}"))
    else:
        too_new = [f for f in (explain(diagnose(output), output, facts) if facts else diagnose(output))
                   if f.rule == NEWER_PYTHON]
        if too_new:  # a package written for a newer Python: its pin is the fix, not the import
            detail, fix = too_new[0].title, too_new[0].fix
        else:
            last = [line for line in output.strip().splitlines() if line.strip()][-1:] or [f"exit code {code}"]
            detail, fix = last[0], "add the missing package to the environment, or fix the import"
        checks.append(Check("import in image", False, f"{spec.entry_script} does not import in {spec.image}: {detail}",
                            f"{fix}\n" + output.rstrip()))
    return checks


def check_project(options: AttachOptions) -> list[Check]:
    """Every check ``amldebug check`` makes for ``options`` (amldebug.json fills what was not
    given): the entry script, the environment file, the model, and with an image, that it
    serves and imports the script. The image is checked only when the script is sound. A
    v2 deployment (--deployment) is read and placed as ``attach --deployment`` places it."""
    from .sources.v2files import refuse_misplaced

    refuse_misplaced(options.source_dir, options.env_file)  # as attach refuses them
    if options.deployment is not None:
        return _check_deployment(options)
    source_dir = Path(options.source_dir or ".")
    project = load_project(source_dir) or {}
    options = options.with_project(project)
    if options.model_name is None and project.get("model_name"):  # check uses the project's model name always
        options = options.replace(model_name=project["model_name"])
    results = [check_entry_script(source_dir / (options.entry_script or "score.py"))]
    env_file = Path(options.env_file) if options.env_file else find_environment_file(source_dir)
    if env_file is not None:
        results.append(check_environment(env_file))
    else:
        results.append(Check("environment", False, f"no requirements.txt or conda YAML in {source_dir}",
                             "pass --env FILE listing azureml-inference-server-http"))
    spec = None
    if options.model_dir is not None:
        try:
            spec = spec_from_options(options.replace(env_file=None))
            results.append(check_model(spec))
        except UsageError as exc:
            results.append(Check("model", False, str(exc)))
    if options.image and results[0].ok:
        spec = spec or spec_from_options(options.replace(env_file=None, model_dir=None, model_name=None,
                                                         model_version=None))
        results.extend(_check_image(spec))
    return results


def _check_deployment(options: AttachOptions) -> list[Check]:
    """``check --deployment FILE``: the spec ``attach --deployment`` places (session.
    place_deployment), checked step by step; its image when it is used as it is."""
    from .session import place_deployment

    spec, setup, placed = place_deployment(options)
    results = [check_entry_script(spec.entry_path), check_deployment_environment(setup, placed), check_model(spec)]
    # The image attach runs as it is: the one given (or amldebug.json's), else the file's without a conda_file.
    image = placed.image or (setup.base_image if setup.environment is None and not placed.env_file else None)
    if image and results[0].ok:
        results.extend(_check_image(spec.replace(image=image)))
    return results


def _check_image(spec: ServiceSpec) -> list[Check]:
    from .engine import docker as engine

    return check_image(engine.connect(), spec)
