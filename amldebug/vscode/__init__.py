"""VS Code's files: JSON with comments merged in place, keeping the user's entries and
comments (jsonc); the entries amldebug writes (entries); a workspace's .vscode folder
(files)."""

from .entries import build_attach_config, build_task, config_name  # noqa: F401 (the package's API)
from .jsonc import (  # noqa: F401
    KINDS,
    folder_lock,
    lock_path,
    merge_entry,
    parse_jsonc,
    read_config_file,
    write_config_files,
)
